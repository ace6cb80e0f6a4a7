-- releases-forever: keep every release forever, let pre-releases expire
-- after a while, and keep only the most recently pushed of the other tags.
--
-- Tags fall into three kinds:
--   release      a version without a pre-release part: 1.2.3, v1.2.3, and
--                also partial versions such as 1.2 or v2. Always kept.
--   pre-release  a version with a pre-release part, such as 2.0.0-rc.1 or
--                v1.3.0-beta2, or a git-describe build such as
--                1.2.3-14-gabc1234. Deleted once older than
--                prerelease_age, kept until then.
--   other        every tag that is not a version: latest, main, main-42,
--                sha-4f2a91c or a bare 123. The keep_others most recently
--                pushed are kept and the rest deleted. latest is an other
--                tag like any, never a version.
--
-- Parameters (set with --set NAME=VALUE):
--   prerelease_age  maximum age of a pre-release, from its last push, as a
--                   duration such as 30d or 1d12h (units s, m, h, d, w). A
--                   pre-release exactly that old is kept. Default 30d.
--   keep_others     number of other tags to keep, the most recently
--                   pushed, a whole number >= 0. Default 10.
--
-- Reasons read like "release, kept forever", "pre-release pushed 45d ago,
-- older than 30d" or "other tag, rank 12 of 15 by pushed, keeping 10".
--
-- Example:
--   regprune prune --policy policies/releases-forever.lua \
--       --set prerelease_age=14d --set keep_others=5 --dry-run

local POLICY = "releases-forever"
local DEFAULTS = { prerelease_age = "30d", keep_others = "10" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_count(value)
    local count = nil
    if string.match(value, "^%d+$") then
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("keep_others must be a whole number >= 0, got '%s'", value)
    end
    return count
end

local function parse_age(value)
    local ok, seconds = pcall(regprune.duration, value)
    if not ok or type(seconds) ~= "number" then
        raise("prerelease_age must be a duration such as 30d or 1d12h "
              .. "(units s, m, h, d, w), got '%s'", value)
    end
    return seconds
end

local format_duration = regprune.format_duration

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local settings = {
    prerelease_age = parse_age(params.prerelease_age),
    keep_others = parse_count(params.keep_others),
}
settings.age_text = format_duration(settings.prerelease_age)

local function judge_prerelease(tag)
    local age = regprune.now - tag.pushed
    if age < 0 then
        keep(tag, "pre-release pushed in the future, not older than "
             .. settings.age_text)
    elseif age <= settings.prerelease_age then
        keep(tag, string.format("pre-release pushed %s ago, within %s",
                                format_duration(age), settings.age_text))
    else
        delete(tag, string.format("pre-release pushed %s ago, older than %s",
                                  format_duration(age), settings.age_text))
    end
end

function policy(repo)
    local others = {}
    for _, tag in ipairs(regprune.sort(repo.tags, "pushed")) do
        local version = regprune.version(tag.name)
        if version == nil then
            others[#others + 1] = tag
        elseif version.prerelease ~= nil or version.commits ~= nil then
            judge_prerelease(tag)
        else
            keep(tag, "release, kept forever")
        end
    end

    for rank, tag in ipairs(others) do
        local reason = string.format("other tag, rank %d of %d by pushed, "
                                     .. "keeping %d", rank, #others,
                                     settings.keep_others)
        if rank <= settings.keep_others then
            keep(tag, reason)
        else
            delete(tag, reason)
        end
    end
end
