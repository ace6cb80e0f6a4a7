-- branch-builds: keep the last few builds of each branch, for CI that tags
-- each build <branch>-<number>, such as main-123, feature-x-45 or
-- release-2.1-7.
--
-- The branch is everything before the last dash and the build number the
-- digits after it, so feature-x-45 is build 45 of branch feature-x. Build
-- numbers compare as numbers: main-10 is newer than main-9. Tags that are
-- versions are never branch builds, so 1.2.0-1 and v2.0.0-rc-3 are not
-- builds of branches named 1.2.0 or v2.0.0-rc. Other tags, such as latest,
-- v1.2.0 or a bare 123, follow the parameter others.
--
-- Parameters (set with --set NAME=VALUE):
--   count   builds to keep per branch, a whole number >= 0. Default 5.
--   order   what "last" means. Default number.
--             number  highest build number, so re-pushing an old build
--                     does not make it count as new.
--             pushed  most recently pushed.
--   others  what happens to tags that are not branch builds. Default
--           keep.
--             keep    keep them.
--             delete  delete them.
--
-- Reasons read like "build 3 of 7 of branch main by number, keeping 5".
--
-- Example:
--   regprune prune --policy policies/branch-builds.lua \
--       --set count=10 --dry-run

local POLICY = "branch-builds"
local DEFAULTS = { count = "5", order = "number", others = "keep" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_count(value)
    local count = nil
    if string.match(value, "^%d+$") then
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("count must be a whole number >= 0, got '%s'", value)
    end
    return count
end

local function parse_choice(name, value, first, second)
    if value ~= first and value ~= second then
        raise("%s must be %s or %s, got '%s'", name, first, second, value)
    end
    return value
end

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local settings = {
    count = parse_count(params.count),
    order = parse_choice("order", params.order, "number", "pushed"),
    others = parse_choice("others", params.others, "keep", "delete"),
}

-- Returns the branch and the build number (as digits) of a branch build,
-- or nil.
local function parse_build(name)
    if regprune.version(name) ~= nil then
        return nil
    end
    -- The greedy .+ makes the branch end at the last dash.
    return string.match(name, "^(.+)%-(%d+)$")
end

-- Compares two digit strings as numbers of any length: true when a > b.
local function greater_number(a, b)
    a = string.match(a, "^0*(%d-)$")
    b = string.match(b, "^0*(%d-)$")
    if #a ~= #b then
        return #a > #b
    end
    return a > b
end

local function sort_builds(builds)
    table.sort(builds, function(a, b)
        if settings.order == "number" and a.number ~= b.number then
            return greater_number(a.number, b.number)
        end
        if a.tag.pushed ~= b.tag.pushed then
            return a.tag.pushed > b.tag.pushed
        end
        return a.tag.name > b.tag.name
    end)
end

function policy(repo)
    local branches = {}  -- branch -> array of {tag, number}
    local names = {}     -- branch names in order of first appearance
    for _, tag in ipairs(regprune.sort(repo.tags, "name")) do
        local branch, number = parse_build(tag.name)
        if branch == nil then
            if settings.others == "keep" then
                keep(tag, "not a branch build (BRANCH-NUMBER)")
            else
                delete(tag, "not a branch build (BRANCH-NUMBER), and "
                       .. "others=delete")
            end
        else
            if branches[branch] == nil then
                branches[branch] = {}
                names[#names + 1] = branch
            end
            table.insert(branches[branch], { tag = tag, number = number })
        end
    end

    for _, branch in ipairs(names) do
        local builds = branches[branch]
        sort_builds(builds)
        for rank, build in ipairs(builds) do
            local reason = string.format("build %d of %d of branch %s by "
                                         .. "%s, keeping %d", rank, #builds,
                                         branch, settings.order,
                                         settings.count)
            if rank <= settings.count then
                keep(build.tag, reason)
            else
                delete(build.tag, reason)
            end
        end
    end
end
