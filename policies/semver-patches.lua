-- semver-patches: keep every patch release of the newest minor versions
-- and only the newest patch release of each older minor version.
--
-- Version tags are X.Y.Z with an optional v and an optional pre-release,
-- such as v1.4.2 or 2.0.0-rc.1, grouped by their minor version X.Y.
-- Minor versions rank by number, so 1.10 is newer than 1.9, and a minor
-- version counts as soon as it has a tag, even a pre-release only.
--   - In the newest `minors` minor versions every release is kept, and so
--     is each pre-release that ranks above the newest release of its minor
--     version (one still to come). Pre-releases of versions already
--     released are deleted: 1.4.1-rc.2 goes once 1.4.1 exists.
--   - In each older minor version one tag is kept: its newest release, or
--     its newest pre-release when it has no release. Pre-releases compare
--     naturally, so rc10 ranks above rc9.
-- Every other tag is not a patch version and follows the parameter
-- others: latest, main-42, git-describe builds such as 1.2.3-4-gabc1234,
-- and floating tags such as 1.4 or v2, which often point at the newest
-- patch and are left alone by default.
--
-- Parameters (set with --set NAME=VALUE):
--   minors  number of the newest minor versions whose releases are all
--           kept, a whole number >= 1. Default 2.
--   others  what happens to tags that are not X.Y.Z versions. Default
--           keep.
--             keep    keep them.
--             delete  delete them.
--
-- Reasons read like "release of minor 1.4, one of the 2 newest minors" or
-- "older minor 1.2 keeps only its newest release, v1.2.5".
--
-- Example: with minors=2 and the tags
--   v1.10.0 v1.10.1   v1.9.0 v1.9.1-rc.1 v1.9.1   v1.8.0 v1.8.1   latest
-- the policy keeps v1.10.0, v1.10.1, v1.9.0 and v1.9.1, then v1.8.1, and
-- latest, and deletes v1.9.1-rc.1 and v1.8.0.
--   regprune prune --policy policies/semver-patches.lua \
--       --set minors=2 --dry-run

local POLICY = "semver-patches"
local DEFAULTS = { minors = "2", others = "keep" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_minors(value)
    local count = nil
    if string.match(value, "^%d+$") then
        count = math.tointeger(tonumber(value))
    end
    if count == nil or count < 1 then
        raise("minors must be a whole number >= 1, got '%s'", value)
    end
    return count
end

local function parse_others(value)
    if value ~= "keep" and value ~= "delete" then
        raise("others must be keep or delete, got '%s'", value)
    end
    return value
end

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local settings = {
    minors = parse_minors(params.minors),
    others = parse_others(params.others),
}

-- Returns the parsed version of a patch version tag (three numbers, no
-- git-describe suffix), or nil.
local function patch_version(tag)
    local version = regprune.version(tag.name)
    if version == nil or #version.parts ~= 3 or version.commits ~= nil then
        return nil
    end
    return version
end

local function judge_other(tag)
    local reason = "not an X.Y.Z version"
    if settings.others == "keep" then
        keep(tag, reason)
    else
        delete(tag, reason .. ", and others=delete")
    end
end

function policy(repo)
    -- Highest version first, so the first tag seen of each minor version
    -- is its highest one.
    local minors = {}      -- "1.4" -> {rank, newest, newest_release}
    local patches = {}     -- {tag, version, minor} in version order
    local seen = 0
    for _, tag in ipairs(regprune.sort(repo.tags, "version")) do
        local version = patch_version(tag)
        if version == nil then
            judge_other(tag)
        else
            local key = version.major .. "." .. version.minor
            local minor = minors[key]
            if minor == nil then
                seen = seen + 1
                minor = { rank = seen, newest = tag }
                minors[key] = minor
            end
            if version.prerelease == nil and minor.newest_release == nil then
                minor.newest_release = tag
            end
            patches[#patches + 1] = { tag = tag, version = version,
                                      minor = key }
        end
    end

    for _, entry in ipairs(patches) do
        local tag, key = entry.tag, entry.minor
        local minor = minors[key]
        local released = minor.newest_release
        if minor.rank <= settings.minors then
            local place = string.format("minor %s, one of the %d newest "
                                        .. "minors", key, settings.minors)
            if entry.version.prerelease == nil then
                keep(tag, "release of " .. place)
            elseif released == nil
                    or regprune.compare_versions(tag.name,
                                                 released.name) > 0 then
                keep(tag, "pre-release not yet released, of " .. place)
            else
                delete(tag, string.format("pre-release of %s, superseded "
                                          .. "by %s", place, released.name))
            end
        elseif tag == (released or minor.newest) then
            keep(tag, string.format("newest %s of older minor %s",
                                    released and "release" or "pre-release",
                                    key))
        else
            delete(tag, string.format("older minor %s keeps only its newest "
                                      .. "%s, %s", key,
                                      released and "release"
                                          or "pre-release",
                                      (released or minor.newest).name))
        end
    end
end
