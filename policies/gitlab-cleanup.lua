-- gitlab-cleanup: the cleanup policy of GitLab's container registry, with
-- GitLab's own parameter names, so that a project's settings carry over
-- unchanged.
--
-- Each repository is judged in the order GitLab documents:
--   1. The tag named latest is always kept.
--   2. Tags whose name does not match name_regex_delete are kept.
--   3. Tags whose name matches name_regex_keep are kept, even when they
--      also match name_regex_delete.
--   4. The remaining tags are sorted newest first and the first keep_n are
--      kept. keep_n counts only these remaining tags, so tags kept by
--      steps 1 to 3 take none of its places. It counts tags, not images:
--      two tags on one digest take two places, as in GitLab.
--   5. Of the rest, tags that are not older than older_than are kept.
--   6. Every tag left is deleted.
--
-- Parameters (set with --set NAME=VALUE):
--   name_regex_delete  regular expression, required: the tags to consider
--                      for deletion, such as .* for all of them. GitLab's
--                      older name name_regex is accepted too. GitLab puts
--                      \A before both patterns and \z after them, and so
--                      does this policy: v\d+ matches v10 but not v10.1 or
--                      dev-v1. As in GitLab, a | outside parentheses splits
--                      those anchors: main|dev means \Amain or dev\z, which
--                      matches main-1 and mydev too, so write (main|dev).
--                      The patterns are PCRE2. GitLab's are RE2, whose
--                      syntax is almost a subset of PCRE2.
--   name_regex_keep    regular expression: tags that are always kept.
--                      Default none.
--   keep_n             number of the newest remaining tags to keep, a
--                      whole number >= 0. GitLab offers 1, 5, 10, 25, 50
--                      and 100, and 0 keeps none, as an unset keep_n does
--                      in GitLab. Default 10.
--   older_than         minimum age of a deleted tag, a duration such as 7d,
--                      14d, 30d, 60d or 90d (GitLab's choices) and any
--                      regprune duration such as 1d12h. A tag exactly that
--                      old is kept. Empty means no age condition. Default
--                      90d.
--   time               the time stamp that "newest" and the age use.
--                      Default pushed.
--                        pushed   when the tag was last pushed. GitLab uses
--                                 this with its registry metadata database.
--                        created  the image config's creation time, which
--                                 GitLab uses without that database. As in
--                                 GitLab, a tag whose image has no creation
--                                 time sorts as the newest and is never
--                                 old enough to delete. Unlike GitLab,
--                                 regprune also counts a creation time of
--                                 1970 or 1980-01-01 (what reproducible
--                                 builds write) as unknown.
--
-- Reasons read like "matches name_regex_keep release-.*" or "rank 12 of 15
-- by pushed, keeping 10, pushed 95d ago, older than 90d".
--
-- Example (quote patterns so the shell leaves them alone):
--   regprune prune --policy policies/gitlab-cleanup.lua \
--       --set 'name_regex_delete=.*' --set 'name_regex_keep=v\d+\.\d+\.\d+' \
--       --set keep_n=5 --set older_than=30d --dry-run

local POLICY = "gitlab-cleanup"
local DEFAULTS = {
    name_regex_delete = false,
    name_regex = false,
    name_regex_keep = false,
    keep_n = "10",
    older_than = "90d",
    time = "pushed",
}

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_count(name, value)
    local count = nil
    if string.match(value, "^%d+$") then
        -- Values too large for a Lua integer become floats, which
        -- math.tointeger turns into nil, so they are rejected too.
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("%s must be a whole number >= 0, got '%s'", name, value)
    end
    return count
end

-- Returns the pattern wrapped in anchors the way GitLab wraps it.
local function parse_regex(name, value)
    local anchored = "\\A" .. value .. "\\z"
    -- Matching once here turns a compile error into a message that names
    -- the parameter, before any tag is judged.
    local ok, message = pcall(regprune.search, "", anchored)
    if not ok then
        raise("%s must be a valid regular expression, got '%s': %s",
              name, value, tostring(message))
    end
    return anchored
end

local function parse_older_than(value)
    if value == "" then
        return nil
    end
    local ok, seconds = pcall(regprune.duration, value)
    if not ok or type(seconds) ~= "number" or seconds < 0 then
        raise("older_than must be a duration such as 7d, 30d or 90d "
              .. "(units s, m, h, d, w), or empty for none, got '%s'", value)
    end
    return math.floor(seconds)
end

local function parse_time(value)
    if value ~= "pushed" and value ~= "created" then
        raise("time must be pushed or created, got '%s'", value)
    end
    return value
end

local format_duration = regprune.format_duration

local function load_settings()
    local params = regprune.parameters(POLICY, DEFAULTS)
    local delete_regex = params.name_regex_delete
    if delete_regex ~= nil and params.name_regex ~= nil then
        raise("name_regex_delete and name_regex are the same parameter, "
              .. "set only one of them")
    end
    if delete_regex == nil and params.name_regex ~= nil then
        delete_regex = params.name_regex
    end
    if delete_regex == nil then
        raise("parameter name_regex_delete is required, for example "
              .. "--set 'name_regex_delete=.*' to consider every tag")
    end
    local settings = {
        delete_regex = parse_regex("name_regex_delete", delete_regex),
        delete_text = delete_regex,
        keep_n = parse_count("keep_n", params.keep_n),
        older_than = parse_older_than(params.older_than),
        time = parse_time(params.time),
    }
    if params.name_regex_keep ~= nil and params.name_regex_keep ~= "" then
        settings.keep_regex = parse_regex("name_regex_keep",
                                          params.name_regex_keep)
        settings.keep_text = params.name_regex_keep
    end
    return settings
end

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local settings = load_settings()

-- Returns the tag's time stamp, or nil when its image has no usable
-- creation time.
local function timestamp(tag)
    if settings.time == "pushed" then
        return tag.pushed
    end
    local age = regprune.age(tag, "created")
    if age == nil then
        return nil
    end
    return regprune.now - age
end

-- Sorts newest first as GitLab does, where an unknown time counts as now.
-- Equal times fall back to the name, so that the order is reproducible.
local function sort_newest_first(tags)
    local sorted = {}
    for i, tag in ipairs(tags) do
        sorted[i] = { tag = tag, time = timestamp(tag) or regprune.now }
    end
    table.sort(sorted, function(a, b)
        if a.time ~= b.time then
            return a.time > b.time
        end
        return a.tag.name > b.tag.name
    end)
    return sorted
end

function policy(repo)
    local candidates = {}
    for _, tag in ipairs(repo.tags) do
        if tag.name == "latest" then
            keep(tag, "the tag latest is always kept")
        elseif not regprune.search(tag.name, settings.delete_regex) then
            keep(tag, "does not match name_regex_delete "
                 .. settings.delete_text)
        elseif settings.keep_regex
                and regprune.search(tag.name, settings.keep_regex) then
            keep(tag, "matches name_regex_keep " .. settings.keep_text)
        else
            candidates[#candidates + 1] = tag
        end
    end

    local sorted = sort_newest_first(candidates)
    for rank, entry in ipairs(sorted) do
        local tag = entry.tag
        local stamp = timestamp(tag)
        local ranking = string.format("rank %d of %d by %s, keeping %d",
                                      rank, #sorted, settings.time,
                                      settings.keep_n)
        if rank <= settings.keep_n then
            keep(tag, ranking)
        elseif settings.older_than == nil then
            delete(tag, ranking .. ", no older_than limit")
        elseif stamp == nil then
            keep(tag, ranking .. ", created time unknown, so never old "
                 .. "enough to delete")
        else
            local age = regprune.now - stamp
            local limit = format_duration(settings.older_than)
            if age <= settings.older_than then
                local age_text = age < 0 and "in the future"
                    or format_duration(age) .. " ago"
                keep(tag, string.format("%s, %s %s, not older than %s",
                                        ranking, settings.time, age_text,
                                        limit))
            else
                delete(tag, string.format("%s, %s %s ago, older than %s",
                                          ranking, settings.time,
                                          format_duration(age), limit))
            end
        end
    end
end
