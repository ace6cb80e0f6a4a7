-- keep-matching: keep every tag whose name matches a regular expression, and
-- of the other tags keep only the most recently pushed few.
--
-- Parameters (set with --set NAME=VALUE):
--   pattern  PCRE2 regular expression, required. It must match the whole
--            tag name, as if it were written between ^ and $: the pattern
--            v\d+\.\d+ keeps v1.0 but not v1.0-bad or xv1.0. Anchors in the
--            pattern are allowed and change nothing.
--   count    number of tags that do not match and are kept anyway, the
--            most recently pushed ones, a whole number >= 0. Default 5, so
--            a pattern that matches less than intended still leaves the
--            newest tags in place. Set count=0 to delete every tag that
--            does not match.
--
-- Reasons read like "matches v\d+" or "does not match v\d+, rank 6 of 9
-- unmatched tags by pushed, keeping 5".
--
-- Example (quote the pattern so the shell leaves the backslashes alone):
--   regprune prune --policy policies/keep-matching.lua \
--       --set 'pattern=v\d+\.\d+\.\d+' --set count=3 --dry-run

local POLICY = "keep-matching"

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_count(value)
    local count = nil
    if string.match(value, "^%d+$") then
        -- Values too large for a Lua integer become floats, which
        -- math.tointeger turns into nil, so they are rejected too.
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("count must be a whole number >= 0, got '%s'", value)
    end
    return count
end

local function parse_pattern(value)
    if value == nil then
        raise("parameter pattern is required, for example "
              .. "--set 'pattern=v\\d+\\.\\d+\\.\\d+'")
    end
    if value == "" then
        raise("pattern must be a non-empty regular expression, got ''")
    end
    -- Matching once here turns a compile error into a message that names
    -- the parameter, before any tag is judged.
    local ok, message = pcall(regprune.fullmatch, "", value)
    if not ok then
        raise("pattern must be a valid PCRE2 regular expression, got '%s': "
              .. "%s", value, tostring(message))
    end
    return value
end

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, { pattern = false, count = "5" })
local settings = {
    pattern = parse_pattern(params.pattern),
    count = parse_count(params.count),
}

function policy(repo)
    local unmatched = {}
    for _, tag in ipairs(repo.tags) do
        if regprune.fullmatch(tag.name, settings.pattern) then
            keep(tag, "matches " .. settings.pattern)
        else
            unmatched[#unmatched + 1] = tag
        end
    end

    local ranked = regprune.sort(unmatched, "pushed")
    for rank, tag in ipairs(ranked) do
        local reason = string.format("does not match %s, rank %d of %d "
                                     .. "unmatched tags by pushed, "
                                     .. "keeping %d",
                                     settings.pattern, rank, #ranked,
                                     settings.count)
        if rank <= settings.count then
            keep(tag, reason)
        else
            delete(tag, reason)
        end
    end
end
