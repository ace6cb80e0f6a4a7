-- A policy with a syntax error on line 3 (= where == is meant).
function policy(repo)
    if repo.name = "app" then
        keep(repo.tags[1], "first tag")
    end
end
