-- Treat releases, pre-releases and other tags differently:
--   releases (1.2.3, v1.2.3)                    kept forever
--   pre-releases (1.3.0-rc.1, v2.0.0-beta2)     deleted once older than 14 days
--   everything else (latest, main-42, sha-1f3a) the 10 most recently pushed
--                                               are kept, the rest deleted
--
-- Docker tags cannot contain "+", so semantic version build metadata
-- (1.2.3+build.5) never appears in a tag name and is not handled here.
--
-- Run it with:
--   regprune prune --policy examples/release-channels.lua --dry-run

-- Pre-releases pushed more than this long ago are deleted.
local PRERELEASE_MAX_AGE = "14d"

-- How many of the other tags to keep, most recently pushed first.
local OTHERS_TO_KEEP = 10

-- regprune.fullmatch matches the whole name, so no ^ or $ is needed.
local RELEASE = [[v?\d+\.\d+\.\d+]]
local PRERELEASE = [[v?\d+\.\d+\.\d+-[0-9A-Za-z.-]+]]

function policy(repo)
    local max_age = regprune.duration(PRERELEASE_MAX_AGE)

    -- Ranking by push time gives the order for the "other" tags. Releases
    -- and pre-releases are judged on their own, so their place in this
    -- order does not matter.
    local others_seen = 0
    for _, tag in ipairs(regprune.sort(repo.tags, "pushed")) do
        if regprune.fullmatch(tag.name, RELEASE) then
            keep(tag, "release, kept forever")
        elseif regprune.fullmatch(tag.name, PRERELEASE) then
            if regprune.now - tag.pushed > max_age then
                delete(tag, "pre-release pushed more than "
                       .. PRERELEASE_MAX_AGE .. " ago")
            else
                keep(tag, "pre-release pushed within the last "
                     .. PRERELEASE_MAX_AGE)
            end
        else
            others_seen = others_seen + 1
            local reason = string.format("neither release nor pre-release, "
                                         .. "rank %d by pushed, keeping %d",
                                         others_seen, OTHERS_TO_KEEP)
            if others_seen <= OTHERS_TO_KEEP then
                keep(tag, reason)
            else
                delete(tag, reason)
            end
        end
    end
end
