-- acr-purge: the tag selection of Azure Container Registry's acr purge.
-- In each repository that a filter names, a tag is deleted when it matches
-- the filter's tag expression and was last pushed longer ago than ago,
-- except the keep most recently pushed of those tags. Other repositories
-- and other tags are kept.
--
-- Parameters (set with --set NAME=VALUE), as acr purge's options:
--   filter  one or more REPOSITORY:TAG filters separated by spaces,
--           required, as acr purge --filter: hello-world:.* or
--           '.*/cache:^dev-'. Both parts are regular expressions (PCRE2
--           here, .NET-style regexp2 in acr purge), and they match
--           differently, as in acr purge:
--             REPOSITORY  is matched as ^REPOSITORY$, so app matches the
--                         repository app but not app/cache.
--             TAG         may match anywhere in the tag: v1 matches v1.0,
--                         xv1 and dev-v1-2. Write ^v1$ for the tag v1 only.
--           The colon that separates the two parts is the first one that
--           is not part of a group such as (?:...) or a class [...]. When
--           several filters name one repository, a tag that matches any
--           of their tag expressions is selected.
--   ago     required: tags last pushed longer ago than this are deleted.
--           A duration such as 30d, 2d3h6m or 12h (units s, m, h, d, w). A
--           tag exactly that old is kept.
--   keep    number of the selected tags to keep, the most recently pushed,
--           a whole number >= 0. Only tags that would otherwise be deleted
--           count. Default 0.
--
-- acr purge's --untagged has no counterpart here: run regprune gc
-- --untagged after the prune instead. Tags are never locked in this
-- registry, so --include-locked has none either.
--
-- Reasons read like "matches app:^dev-, pushed 45d ago, older than 30d" or
-- "... but rank 1 of 4 to delete, keeping 2".
--
-- Example (as acr purge --filter 'hello-world:^hello.*' --ago 7d --keep 2):
--   regprune prune --policy policies/acr-purge.lua \
--       --set 'filter=hello-world:^hello.*' --set ago=7d --set keep=2 \
--       --dry-run

local POLICY = "acr-purge"
local DEFAULTS = { filter = false, ago = false, keep = "0" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

-- Returns the position of the colon that separates the repository and tag
-- expressions, skipping colons inside [...] and right after "(?" with
-- optional flags, or nil when there is not exactly one.
local function separator_of(filter)
    local found = nil
    local in_class = false
    local i = 1
    while i <= #filter do
        local c = string.sub(filter, i, i)
        if c == "\\" then
            i = i + 1
        elseif in_class then
            in_class = c ~= "]"
        elseif c == "[" then
            in_class = true
        elseif c == ":" then
            local before = string.sub(filter, 1, i - 1)
            if not string.match(before, "%(%?[imsxU%-]*$") then
                if found then
                    return nil
                end
                found = i
            end
        end
        i = i + 1
    end
    return found
end

local function check_regex(filter, part, pattern)
    local ok, message = pcall(regprune.search, "", pattern)
    if not ok then
        raise("filter '%s' has an invalid %s expression '%s': %s", filter,
              part, pattern, tostring(message))
    end
end

local function parse_filters(value)
    if value == nil then
        raise("parameter filter is required, for example "
              .. "--set 'filter=hello-world:.*'")
    end
    local filters = {}
    for text in string.gmatch(value, "%S+") do
        local colon = separator_of(text)
        local repository = colon and string.sub(text, 1, colon - 1)
        local tag = colon and string.sub(text, colon + 1)
        if not colon or repository == "" or tag == "" then
            raise("filter must be REPOSITORY:TAG with one separating "
                  .. "colon and both parts non-empty, got '%s'", text)
        end
        check_regex(text, "repository", "^" .. repository .. "$")
        check_regex(text, "tag", tag)
        filters[#filters + 1] = { text = text,
                                  repository = "^" .. repository .. "$",
                                  tag = tag }
    end
    if #filters == 0 then
        raise("filter must be REPOSITORY:TAG, got '%s'", value)
    end
    return filters
end

local function parse_ago(value)
    if value == nil then
        raise("parameter ago is required, for example --set ago=30d")
    end
    local ok, seconds = pcall(regprune.duration, value)
    if not ok or type(seconds) ~= "number" then
        raise("ago must be a duration such as 30d, 2d3h6m or 12h "
              .. "(units s, m, h, d, w), got '%s'", value)
    end
    return seconds
end

local function parse_keep(value)
    local count = nil
    if string.match(value, "^%d+$") then
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("keep must be a whole number >= 0, got '%s'", value)
    end
    return count
end

local format_duration = regprune.format_duration

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local settings = {
    filters = parse_filters(params.filter),
    ago = parse_ago(params.ago),
    keep = parse_keep(params.keep),
}
settings.ago_text = format_duration(settings.ago)

-- Returns the first of the filters whose tag expression matches the tag.
local function matching_filter(filters, tag)
    for _, filter in ipairs(filters) do
        if regprune.search(tag.name, filter.tag) then
            return filter
        end
    end
    return nil
end

function policy(repo)
    local filters = {}
    for _, filter in ipairs(settings.filters) do
        if regprune.search(repo.name, filter.repository) then
            filters[#filters + 1] = filter
        end
    end
    if #filters == 0 then
        for _, tag in ipairs(repo.tags) do
            keep(tag, "no filter names repository " .. repo.name)
        end
        return
    end

    local eligible = {}
    for _, tag in ipairs(regprune.sort(repo.tags, "pushed")) do
        local filter = matching_filter(filters, tag)
        local age = regprune.now - tag.pushed
        if filter == nil then
            keep(tag, "matches no tag expression of the filters for "
                 .. repo.name)
        elseif age <= settings.ago then
            local age_text = age < 0 and "in the future"
                or format_duration(age) .. " ago"
            keep(tag, string.format("matches %s, pushed %s, not older "
                                    .. "than %s", filter.text, age_text,
                                    settings.ago_text))
        else
            eligible[#eligible + 1] = { tag = tag, filter = filter,
                                        age = age }
        end
    end

    for rank, entry in ipairs(eligible) do
        local reason = string.format("matches %s, pushed %s ago, older "
                                     .. "than %s", entry.filter.text,
                                     format_duration(entry.age),
                                     settings.ago_text)
        if rank <= settings.keep then
            keep(entry.tag, string.format("%s, but rank %d of %d to "
                                          .. "delete, keeping %d", reason,
                                          rank, #eligible, settings.keep))
        else
            delete(entry.tag, reason)
        end
    end
end
