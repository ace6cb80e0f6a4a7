-- Keep every patch release of the newest minor versions, and only the newest
-- patch release of each older minor version.
--
-- Releases are tags of the form vX.Y.Z. With NEWEST_MINORS = 2 and the tags
--   v1.4.0 v1.4.1   v1.3.0 v1.3.1 v1.3.2   v1.2.0 v1.2.1   v0.9.7
-- the policy keeps v1.4.0, v1.4.1, v1.3.0, v1.3.1 and v1.3.2 (the two newest
-- minors, 1.4 and 1.3), then v1.2.1 and v0.9.7 (the newest patch of each
-- older minor), and deletes v1.2.0. Minor versions are compared as numbers,
-- so 1.10 is newer than 1.9.
--
-- Tags that are not releases, such as latest, main-42 or v2.0.0-rc.1, are
-- kept. Combine this file with another rule if those need pruning too.
--
-- Run it with:
--   regprune prune --policy examples/release-minors.lua --dry-run

-- How many of the newest minor versions keep all of their patch releases.
local NEWEST_MINORS = 2

-- A release tag: v, then major, minor and patch numbers. regprune.fullmatch
-- matches the whole name, so no ^ or $ is needed.
local RELEASE = [[v\d+\.\d+\.\d+]]

function policy(repo)
    -- regprune.sort returns a new array, highest version first.
    local by_version = regprune.sort(repo.tags, "version")

    -- Minor versions seen so far ("1.4"), in order from newest to oldest.
    local minor_rank = {}
    local minors_seen = 0

    for _, tag in ipairs(by_version) do
        if not regprune.fullmatch(tag.name, RELEASE) then
            keep(tag, "not a vX.Y.Z release")
        else
            -- fullmatch has checked the shape, so this plain Lua pattern
            -- only pulls out the numbers.
            local major, minor = string.match(tag.name, "^v(%d+)%.(%d+)%.")
            local key = major .. "." .. minor

            if minor_rank[key] == nil then
                -- The first tag of a minor in version order is its newest
                -- patch release.
                minors_seen = minors_seen + 1
                minor_rank[key] = minors_seen
                if minors_seen <= NEWEST_MINORS then
                    keep(tag, "release of minor " .. key .. ", one of the "
                         .. NEWEST_MINORS .. " newest minors")
                else
                    keep(tag, "newest patch release of older minor " .. key)
                end
            elseif minor_rank[key] <= NEWEST_MINORS then
                keep(tag, "release of minor " .. key .. ", one of the "
                     .. NEWEST_MINORS .. " newest minors")
            else
                delete(tag, "older patch release of older minor " .. key)
            end
        end
    end
end
