-- keep-last: keep the newest N tags of each repository and delete the rest.
--
-- Parameters (set with --set NAME=VALUE):
--   count  number of tags to keep, a whole number >= 0. Default 10.
--   order  what "newest" means. Default pushed.
--            pushed   time the tag was last pushed, newest first.
--            created  image creation time from the image config, newest
--                     first. Images without a creation time rank last.
--            version  semantic version with an optional leading v, highest
--                     first: 1.10 ranks above 1.9, and 2.0.0 above
--                     2.0.0-rc.10. Tags that are not versions (latest,
--                     main-42) rank after every version, so they are the
--                     first to be deleted.
--            name     tag name in natural order, descending: build-10 ranks
--                     above build-9.
--
-- Every tag gets a reason such as "rank 3 of 12 by version, keeping 10".
-- With count=0 the policy deletes every tag, but regprune still keeps the
-- most recently pushed tag of each repository unless --allow-empty is given.
--
-- Example:
--   regprune prune --policy policies/keep-last.lua \
--       --set count=5 --set order=version --dry-run

local POLICY = "keep-last"
local DEFAULTS = { count = "10", order = "pushed" }
local ORDERS = { "pushed", "created", "version", "name" }

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

local function parse_order(value)
    for _, order in ipairs(ORDERS) do
        if value == order then
            return order
        end
    end
    raise("order must be one of %s, got '%s'",
          table.concat(ORDERS, ", "), value)
end

-- Parameters are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local params = regprune.parameters(POLICY, DEFAULTS)
local settings = {
    count = parse_count(params.count),
    order = parse_order(params.order),
}

function policy(repo)
    local ranked = regprune.sort(repo.tags, settings.order)
    for rank, tag in ipairs(ranked) do
        local reason = string.format("rank %d of %d by %s, keeping %d",
                                     rank, #ranked, settings.order,
                                     settings.count)
        if rank <= settings.count then
            keep(tag, reason)
        else
            delete(tag, reason)
        end
    end
end
