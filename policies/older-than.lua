-- older-than: delete tags older than a given age, but always keep the newest
-- few tags of each repository.
--
-- Parameters (set with --set NAME=VALUE):
--   age   maximum age as a duration: a number and a unit s, m, h, d or w,
--         and units may combine, as in 1d12h. A tag is deleted when it is
--         strictly older than this. Default 30d.
--   keep  number of most recently pushed tags that are kept whatever their
--         age, a whole number >= 0. Default 5.
--   time  which time stamp the age is measured from. Default pushed.
--           pushed   when the tag was last pushed to the registry.
--           created  when the image was built, from the image config. A tag
--                    whose image has no creation time is kept, because its
--                    age is unknown, with the reason "created time
--                    unknown".
--         The keep parameter always ranks tags by push time, whichever time
--         stamp is chosen here.
--
-- Ages are measured from the run clock, which is the current time unless
-- --now is given. Reasons read like "pushed 45d ago, older than 30d".
--
-- Example:
--   regprune prune --policy policies/older-than.lua \
--       --set age=90d --set keep=3 --dry-run

local POLICY = "older-than"
local DEFAULTS = { age = "30d", keep = "5", time = "pushed" }
local TIMES = { "pushed", "created" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_keep(value)
    local keep_count = nil
    if string.match(value, "^%d+$") then
        -- Values too large for a Lua integer become floats, which
        -- math.tointeger turns into nil, so they are rejected too.
        keep_count = math.tointeger(tonumber(value))
    end
    if keep_count == nil then
        raise("keep must be a whole number >= 0, got '%s'", value)
    end
    return keep_count
end

local function parse_age(value)
    -- regprune.duration raises on text it cannot parse. The error is
    -- caught here so the message can name the parameter.
    local ok, seconds = pcall(regprune.duration, value)
    if not ok or type(seconds) ~= "number" or seconds < 0 then
        raise("age must be a duration such as 30d, 12h or 1d12h "
              .. "(units s, m, h, d, w), got '%s'", value)
    end
    return math.floor(seconds)
end

local function parse_time(value)
    for _, time in ipairs(TIMES) do
        if value == time then
            return time
        end
    end
    raise("time must be one of %s, got '%s'",
          table.concat(TIMES, ", "), value)
end

local format_duration = regprune.format_duration

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local age = parse_age(params.age)
local settings = {
    age = age,
    age_text = format_duration(age),
    keep = parse_keep(params.keep),
    time = parse_time(params.time),
}

function policy(repo)
    local by_pushed = regprune.sort(repo.tags, "pushed")
    for rank, tag in ipairs(by_pushed) do
        local stamp = tag[settings.time]
        if stamp == nil then
            -- Only created can be missing: pushed is always set.
            keep(tag, "created time unknown, so its age cannot be checked")
        else
            local age = regprune.now - stamp
            if age < 0 then
                keep(tag, string.format("%s %s in the future, not older "
                                        .. "than %s", settings.time,
                                        format_duration(-age),
                                        settings.age_text))
            elseif age <= settings.age then
                keep(tag, string.format("%s %s ago, within %s",
                                        settings.time, format_duration(age),
                                        settings.age_text))
            elseif rank <= settings.keep then
                keep(tag, string.format("%s %s ago, older than %s, but "
                                        .. "rank %d of %d by pushed, "
                                        .. "keeping the newest %d",
                                        settings.time, format_duration(age),
                                        settings.age_text, rank, #by_pushed,
                                        settings.keep))
            else
                delete(tag, string.format("%s %s ago, older than %s",
                                          settings.time,
                                          format_duration(age),
                                          settings.age_text))
            end
        end
    end
end
