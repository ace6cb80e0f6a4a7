-- Keep the last 5 builds of each branch.
--
-- CI pushes one tag per build, named after the branch and the build number:
-- main-123, feature-x-45, release-2.1-7. The branch is everything before the
-- last dash and the build number is the digits after it, so feature-x-45 is
-- build 45 of branch feature-x. Builds are ranked by their number, not by
-- push time, so re-pushing an old build does not make it count as new.
--
-- Tags that do not end in -NUMBER (latest, v1.2.0) are kept, and so are
-- tags matching KEEP_NAMES below. Without that pattern a version with a
-- package revision, such as v1.2.0-1, would count as build 1 of a branch
-- named v1.2.0.
--
-- Run it with:
--   regprune prune --policy examples/branch-builds.lua --dry-run

-- How many builds of each branch to keep.
local BUILDS_PER_BRANCH = 5

-- A branch build: any name, a dash, then only digits. regprune.fullmatch
-- matches the whole name, so no ^ or $ is needed.
local BRANCH_BUILD = [[.+-\d+]]

-- Tags that are always kept, even if they look like branch builds: here
-- versions with a package revision (v1.2.0-1). Use | to add more names.
local KEEP_NAMES = [[v\d+\.\d+\.\d+-\d+]]

function policy(repo)
    -- Natural order puts main-123 above main-99, so sorting by name
    -- descending puts the highest build number of each branch first.
    local by_name = regprune.sort(repo.tags, "name")

    -- Builds of each branch, highest build number first.
    local builds = {}
    local branches = {}

    for _, tag in ipairs(by_name) do
        if regprune.fullmatch(tag.name, KEEP_NAMES) then
            keep(tag, "matches KEEP_NAMES")
        elseif not regprune.fullmatch(tag.name, BRANCH_BUILD) then
            keep(tag, "not a branch build (BRANCH-NUMBER)")
        else
            -- The greedy .+ makes the branch end at the last dash.
            local branch = string.match(tag.name, "^(.+)%-%d+$")
            if builds[branch] == nil then
                builds[branch] = {}
                branches[#branches + 1] = branch
            end
            table.insert(builds[branch], tag)
        end
    end

    for _, branch in ipairs(branches) do
        local tags = builds[branch]
        for rank, tag in ipairs(tags) do
            local reason = string.format("rank %d of %d builds of branch "
                                         .. "%s, keeping %d", rank, #tags,
                                         branch, BUILDS_PER_BRANCH)
            if rank <= BUILDS_PER_BRANCH then
                keep(tag, reason)
            else
                delete(tag, reason)
            end
        end
    end
end
