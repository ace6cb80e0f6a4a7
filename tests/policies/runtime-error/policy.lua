-- Fails with a runtime error on line 7 for one repository only.
function policy(repo)
    if repo.name == "base" then
        delete("old", "old build")
    end
    if repo.name == "team/app/api" then
        local count = #repo.no_such_field
        keep(repo.tags[1], "unreachable " .. count)
    end
end
