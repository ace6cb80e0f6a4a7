-- Keep everything pushed in the last 7 days, plus the 3 newest releases, and
-- delete the rest.
--
-- Releases are tags like v1.2.3 or 1.2.3 without a pre-release suffix, and
-- "newest" means highest version, so 1.10.0 is newer than 1.9.0 whenever it
-- was pushed. Pre-releases (1.3.0-rc.1), branch builds and other tags stay
-- only while they are no older than RECENT. The names in ALWAYS_KEEP are
-- kept whatever their age. Remove latest from it if an old latest tag
-- should go as well.
--
-- Run it with:
--   regprune prune --policy examples/recent-and-releases.lua --dry-run
-- Pass --now 2024-12-01T00:00:00Z to see what a run at another time would
-- delete.

-- Tags pushed no more than this long ago are kept.
local RECENT = "7d"

-- How many of the highest releases to keep, whatever their age.
local RELEASES_TO_KEEP = 3

-- A release tag: an optional v, then major, minor and patch numbers.
-- regprune.fullmatch matches the whole name, so no ^ or $ is needed.
local RELEASE = [[v?\d+\.\d+\.\d+]]

-- Tags kept whatever their age.
local ALWAYS_KEEP = { latest = true }

function policy(repo)
    local recent_seconds = regprune.duration(RECENT)

    -- regprune.sort returns a new array, highest version first, so the
    -- first releases met are the newest. Tags that are not versions come
    -- last.
    local release_rank = 0
    for _, tag in ipairs(regprune.sort(repo.tags, "version")) do
        local is_release = regprune.fullmatch(tag.name, RELEASE)
        if is_release then
            release_rank = release_rank + 1
        end

        if ALWAYS_KEEP[tag.name] then
            keep(tag, "listed in ALWAYS_KEEP")
        elseif is_release and release_rank <= RELEASES_TO_KEEP then
            keep(tag, string.format("release ranked %d by version, keeping "
                                    .. "the %d newest", release_rank,
                                    RELEASES_TO_KEEP))
        elseif regprune.now - tag.pushed <= recent_seconds then
            keep(tag, "pushed within the last " .. RECENT)
        elseif is_release then
            delete(tag, string.format("pushed more than %s ago and not "
                                      .. "among the %d newest releases",
                                      RECENT, RELEASES_TO_KEEP))
        else
            delete(tag, "pushed more than " .. RECENT
                    .. " ago and not a release")
        end
    end
end
