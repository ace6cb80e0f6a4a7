-- Deletes one tag by name and leaves the others without a verdict.
function policy(repo)
    delete("old", "the only tag with a verdict")
end
