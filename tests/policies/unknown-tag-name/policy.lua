-- Deletes a tag by a name that does not exist in the repository.
function policy(repo)
    delete("no-such-tag", "typo in the tag name")
end
