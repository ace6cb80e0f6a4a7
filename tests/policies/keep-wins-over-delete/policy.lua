-- Calls keep and delete on the same tags: keep must win in either order.
function policy(repo)
    keep("kept-first", "kept before delete")
    for _, tag in ipairs(repo.tags) do
        delete(tag, "every tag deleted")
    end
    keep("kept-after", "kept after delete")
end
