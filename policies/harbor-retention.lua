-- harbor-retention: Harbor's tag retention rules. A rule retains some
-- artifacts of the repositories it applies to, an artifact that any rule
-- retains is kept, and every other artifact of those repositories is
-- deleted. Repositories that no rule applies to are left alone.
--
-- An artifact is an image: a digest with all its tags. A rule selects an
-- artifact by its tags, then its retention template picks which selected
-- artifacts to retain. All tags of an artifact share its verdict, so a
-- retained artifact keeps even the tags the selector did not match, and
-- latestPushedK counts artifacts, not tags. An artifact's push time is the
-- most recent push of any of its tags.
--
-- Parameters (set with --set NAME=VALUE):
--   rule1 ... rule15  one rule each, as words separated by spaces (Harbor
--                     allows 15 rules). At least one rule is required. The
--                     rule numbers only name the rules in reasons: rules
--                     are OR-ed, so their order does not matter.
--
-- Words of a rule, with Harbor's template names:
--   latestPushedK=N       retain the most recently pushed N artifacts.
--   nDaysSinceLastPush=N  retain the artifacts pushed within the last N
--                         days. An artifact pushed exactly N days ago is
--                         retained.
--   always                retain every selected artifact.
--   tags=PATTERN          select artifacts with a tag that matches PATTERN
--                         (Harbor's "matching"). Default **, every tag.
--   tags!=PATTERN         select artifacts with a tag that does not match
--                         PATTERN (Harbor's "excluding").
--   repos=PATTERN         apply the rule to repositories whose name
--                         matches PATTERN. Default **, every repository.
--   repos!=PATTERN        apply it to repositories whose name does not.
-- Exactly one template is required, and the selectors are optional. Patterns
-- are doublestar globs that match the whole name: * is any text without
-- "/", ** any text, ? one character, [a-z] a class and {a,b} either. So
-- v1* matches v1 and v1.2 but not xv1. Repository patterns see the full
-- path in this registry, such as team/app, where Harbor leaves out the
-- project name.
--
-- Harbor's templates that use pull times (latestPulledN,
-- nDaysSinceLastPull) are rejected, because the registry's storage does not
-- record pulls.
--
-- Reasons name the rule that retains an artifact, such as "rule1
-- latestPushedK=3 tags=release-*: rank 2 of 5 artifacts by push time", or
-- the rules that apply but retain nothing.
--
-- Example: keep the 10 newest artifacts, anything pushed in the last 7
-- days, and every release tag.
--   regprune prune --policy policies/harbor-retention.lua \
--       --set 'rule1=latestPushedK=10' \
--       --set 'rule2=nDaysSinceLastPush=7' \
--       --set 'rule3=always tags=v*.*.*' --dry-run

local POLICY = "harbor-retention"
local MAX_RULES = 15
local DAY = 86400

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_count(rule, word, value)
    local count = nil
    if string.match(value, "^%d+$") then
        count = math.tointeger(tonumber(value))
    end
    if count == nil then
        raise("%s: %s needs a whole number >= 0, got '%s'", rule, word, value)
    end
    return count
end

local function parse_pattern(rule, word, value)
    -- regprune.glob raises on an unclosed [, so trying the pattern once
    -- here turns that into a message that names the rule.
    local ok, message = pcall(regprune.glob, "x", value)
    if not ok then
        raise("%s: %s has an invalid pattern '%s': %s", rule, word, value,
              tostring(message))
    end
    return value
end

local format_duration = regprune.format_duration

-- Parses one rule's words into {template, count, tags, repos, text}.
local function parse_rule(rule, text)
    local parsed = {
        name = rule,
        text = text,
        tags = { pattern = "**", match = true },
        repos = { pattern = "**", match = true },
    }
    local seen = {}
    for word in string.gmatch(text, "%S+") do
        local key, operator, value = string.match(word, "^(%a+)(!?=)(.*)$")
        if word == "always" then
            key = "always"
        end
        if key and seen[key] then
            raise("%s: %s appears twice in '%s'", rule, key, text)
        end
        if key == "always" and operator == nil then
            parsed.template = "always"
        elseif (key == "latestPushedK" or key == "nDaysSinceLastPush")
                and operator == "=" then
            parsed.template = key
            parsed.count = parse_count(rule, key, value)
        elseif key == "latestPulledN" or key == "nDaysSinceLastPull" then
            raise("%s: %s is not supported, because the registry does not "
                  .. "record pulls", rule, key)
        elseif key == "tags" or key == "repos" then
            parsed[key] = {
                pattern = parse_pattern(rule, key .. operator, value),
                match = operator == "=",
            }
        else
            raise("%s: unknown word '%s', expected latestPushedK=N, "
                  .. "nDaysSinceLastPush=N, always, tags=PATTERN, "
                  .. "tags!=PATTERN, repos=PATTERN or repos!=PATTERN",
                  rule, word)
        end
        if key then
            seen[key] = true
        end
    end
    if seen.always and (seen.latestPushedK or seen.nDaysSinceLastPush)
            or (seen.latestPushedK and seen.nDaysSinceLastPush) then
        raise("%s: give only one of latestPushedK, nDaysSinceLastPush and "
              .. "always, got '%s'", rule, text)
    end
    if parsed.template == nil then
        raise("%s: a template is required: latestPushedK=N, "
              .. "nDaysSinceLastPush=N or always, got '%s'", rule, text)
    end
    return parsed
end

local function load_rules()
    local defaults = {}
    for i = 1, MAX_RULES do
        defaults["rule" .. i] = false
    end
    local params = regprune.parameters(POLICY, defaults)
    local rules = {}
    for i = 1, MAX_RULES do
        local text = params["rule" .. i]
        if text ~= nil then
            rules[#rules + 1] = parse_rule("rule" .. i, text)
        end
    end
    if #rules == 0 then
        raise("at least one rule is required, for example "
              .. "--set 'rule1=latestPushedK=10'")
    end
    return rules
end

-- Rules are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local rules = load_rules()

-- Tells whether a selector picks a name list: "matching" needs one name
-- that matches and "excluding" one name that does not. An empty pattern
-- matches everything, as in Harbor.
local function selects(selector, names)
    for _, name in ipairs(names) do
        local hit = selector.pattern == ""
            or regprune.glob(name, selector.pattern)
        if hit == selector.match then
            return true
        end
    end
    return false
end

-- Returns the repository's artifacts, each {tags, names, pushed}.
local function artifacts_of(repo)
    local artifacts = {}
    for _, image in ipairs(regprune.images(repo.tags)) do
        local artifact = { digest = image.digest, tags = image.tags,
                           names = {}, pushed = 0 }
        for _, tag in ipairs(image.tags) do
            artifact.names[#artifact.names + 1] = tag.name
            artifact.pushed = math.max(artifact.pushed, tag.pushed)
        end
        artifacts[#artifacts + 1] = artifact
    end
    return artifacts
end

-- Applies one rule: stores a reason in retained[artifact] for each
-- artifact it retains (unless an earlier rule did) and a note in
-- missed[artifact] for the others.
local function apply_rule(rule, artifacts, retained, missed)
    local selected = {}
    for _, artifact in ipairs(artifacts) do
        if selects(rule.tags, artifact.names) then
            selected[#selected + 1] = artifact
        else
            table.insert(missed[artifact], rule.name .. " does not select it")
        end
    end
    table.sort(selected, function(a, b)
        if a.pushed ~= b.pushed then
            return a.pushed > b.pushed
        end
        return a.digest < b.digest
    end)
    for rank, artifact in ipairs(selected) do
        local reason, note
        if rule.template == "always" then
            reason = "retained always"
        elseif rule.template == "latestPushedK" then
            reason = string.format("rank %d of %d artifacts by push time",
                                   rank, #selected)
            if rank > rule.count then
                note = string.format("%s rank %d of %d, beyond %d",
                                     rule.name, rank, #selected, rule.count)
            end
        else
            local age = regprune.now - artifact.pushed
            local age_text = age < 0 and "in the future"
                or format_duration(age) .. " ago"
            reason = string.format("pushed %s, within %d days", age_text,
                                   rule.count)
            if age > rule.count * DAY then
                note = string.format("%s pushed %s, more than %d days",
                                     rule.name, age_text, rule.count)
            end
        end
        if note then
            table.insert(missed[artifact], note)
        elseif retained[artifact] == nil then
            retained[artifact] = rule.name .. " " .. rule.text .. ": "
                .. reason
        end
    end
end

function policy(repo)
    local applicable = {}
    for _, rule in ipairs(rules) do
        if selects(rule.repos, { repo.name }) then
            applicable[#applicable + 1] = rule
        end
    end
    if #applicable == 0 then
        for _, tag in ipairs(repo.tags) do
            keep(tag, "no rule applies to repository " .. repo.name)
        end
        return
    end

    local artifacts = artifacts_of(repo)
    local retained, missed = {}, {}
    for _, artifact in ipairs(artifacts) do
        missed[artifact] = {}
    end
    for _, rule in ipairs(applicable) do
        apply_rule(rule, artifacts, retained, missed)
    end

    for _, artifact in ipairs(artifacts) do
        for _, tag in ipairs(artifact.tags) do
            if retained[artifact] then
                keep(tag, retained[artifact])
            else
                delete(tag, "retained by no rule: "
                       .. table.concat(missed[artifact], ", "))
            end
        end
    end
end
