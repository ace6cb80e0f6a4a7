-- ecr-lifecycle: an Amazon ECR lifecycle policy. Each rule selects images
-- by their tags and expires those beyond a count or an age. Rules run in
-- order of rulePriority, lowest first, and what no rule expires is kept.
--
-- The unit is the image, a digest with all its tags: an expired image
-- loses every tag, and counts are counts of images. An image's push time
-- is the most recent push of any of its tags.
--
-- Rule order follows the evaluation rules in the ECR documentation:
--   - An image is expired by one rule at most.
--   - Once a rule's selection matches an image, no rule of a lower
--     priority (a higher rulePriority) can expire it, even when the rule
--     that matched it keeps it.
--   - A rule still counts images that higher-priority rules matched, as if
--     they had not been expired. So with rule 1 "prod*, keep 1" and rule 2
--     "beta*, keep 1", an image tagged both beta-2 and prod-2 takes rule
--     2's one place although only rule 1 can expire it.
--
-- Parameters (set with --set NAME=VALUE):
--   rule<P>  one rule whose rulePriority is P, a whole number >= 1, such
--            as rule1 or rule20, written as KEY=VALUE words separated by
--            spaces with the keys of ECR's "selection" object. At least
--            one rule is required.
--
-- Keys of a rule:
--   tagStatus=tagged|any|untagged   required. tagged needs exactly one of
--                    tagPrefixList and tagPatternList, any and untagged
--                    take neither. A rule with any must have the highest
--                    priority. untagged selects nothing here, because
--                    policies see tags only. regprune gc --untagged removes
--                    untagged manifests.
--   tagPrefixList=P1,P2      an image matches when every prefix starts one
--                            of its tags: prod matches prod, prod-1, prod2.
--   tagPatternList=G1,G2     an image matches when every pattern matches
--                            one of its tags as a whole. * is any text (at
--                            most four per pattern), so prod matches only
--                            prod, and prod* also prod-1.
--   countType=imageCountMoreThan|sinceImagePushed   required.
--   countNumber=N   required, a whole number >= 1: how many images to keep
--                   (newest first), or how many days old an image may be.
--                   An image exactly N days old is kept.
--   countUnit=days  optional, only with sinceImagePushed.
--
-- Reasons name the deciding rule, such as "rule1 expires it: image 3 of 5
-- matching tagPrefixList=prod, more than 2" or "rule1 keeps it: pushed 3d
-- ago, not more than 14 days".
--
-- Example: keep the 5 newest prod images, expire other images after 14
-- days.
--   keep5='countType=imageCountMoreThan countNumber=5'
--   days14='countType=sinceImagePushed countUnit=days countNumber=14'
--   regprune prune --policy policies/ecr-lifecycle.lua \
--       --set "rule1=tagStatus=tagged tagPrefixList=prod $keep5" \
--       --set "rule2=tagStatus=any $days14" --dry-run

local POLICY = "ecr-lifecycle"
local DAY = 86400
local KEYS = { "tagStatus", "tagPrefixList", "tagPatternList", "countType",
               "countNumber", "countUnit" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function split_list(rule, key, value)
    local items = {}
    for item in string.gmatch(value, "[^,]+") do
        items[#items + 1] = item
    end
    if #items == 0 then
        raise("%s: %s needs at least one entry, got '%s'", rule, key, value)
    end
    return items
end

-- Checks a tagPatternList entry: tag characters and at most four *, as ECR
-- accepts. Returns it as a glob, whose only special character is then *.
local function parse_tag_pattern(rule, pattern)
    local _, stars = string.gsub(pattern, "%*", "")
    if not string.match(pattern, "^[%w_.%-*]+$") or stars > 4 then
        raise("%s: tagPatternList entry '%s' is invalid: use tag "
              .. "characters (letters, digits, _ . -) and at most four *",
              rule, pattern)
    end
    return pattern
end

local function parse_rule(rule, priority, text)
    local fields = {}
    for word in string.gmatch(text, "%S+") do
        local key, value = string.match(word, "^([%a]+)=(.*)$")
        local known = false
        for _, name in ipairs(KEYS) do
            known = known or key == name
        end
        if not known then
            raise("%s: unknown word '%s', expected KEY=VALUE with a key "
                  .. "among %s", rule, word, table.concat(KEYS, ", "))
        end
        if fields[key] then
            raise("%s: %s appears twice", rule, key)
        end
        fields[key] = value
    end

    local parsed = { name = rule, priority = priority,
                     status = fields.tagStatus, count_type = fields.countType }
    if parsed.status ~= "tagged" and parsed.status ~= "any"
            and parsed.status ~= "untagged" then
        raise("%s: tagStatus must be tagged, any or untagged, got '%s'",
              rule, tostring(parsed.status))
    end
    local lists = (fields.tagPrefixList and 1 or 0)
        + (fields.tagPatternList and 1 or 0)
    if parsed.status == "tagged" and lists ~= 1 then
        raise("%s: tagStatus=tagged needs exactly one of tagPrefixList and "
              .. "tagPatternList", rule)
    elseif parsed.status ~= "tagged" and lists ~= 0 then
        raise("%s: tagStatus=%s takes no tagPrefixList or tagPatternList",
              rule, parsed.status)
    end
    if fields.tagPrefixList then
        parsed.prefixes = split_list(rule, "tagPrefixList",
                                     fields.tagPrefixList)
        parsed.selection = "tagPrefixList=" .. fields.tagPrefixList
    elseif fields.tagPatternList then
        parsed.patterns = {}
        for _, item in ipairs(split_list(rule, "tagPatternList",
                                         fields.tagPatternList)) do
            parsed.patterns[#parsed.patterns + 1] =
                parse_tag_pattern(rule, item)
        end
        parsed.selection = "tagPatternList=" .. fields.tagPatternList
    else
        parsed.selection = "tagStatus=" .. parsed.status
    end

    if parsed.count_type ~= "imageCountMoreThan"
            and parsed.count_type ~= "sinceImagePushed" then
        raise("%s: countType must be imageCountMoreThan or sinceImagePushed "
              .. "(pull and transition times are not recorded), got '%s'",
              rule, tostring(parsed.count_type))
    end
    local number = fields.countNumber or ""
    parsed.count = string.match(number, "^%d+$")
        and math.tointeger(tonumber(number))
    if not parsed.count or parsed.count < 1 then
        raise("%s: countNumber must be a whole number >= 1, got '%s'",
              rule, number)
    end
    if fields.countUnit and (fields.countUnit ~= "days"
            or parsed.count_type ~= "sinceImagePushed") then
        raise("%s: countUnit must be days, and only with "
              .. "countType=sinceImagePushed, got '%s'", rule,
              fields.countUnit)
    end
    return parsed
end

-- Returns the --set names, sorted so that errors come out in a stable
-- order.
local function parameter_names()
    local names = {}
    for name in pairs(regprune.params) do
        names[#names + 1] = name
    end
    table.sort(names)
    return names
end

local function load_rules()
    -- Rule names carry the priority, so the known names are those given.
    -- Any other name is rejected here with a message that explains them.
    local defaults = {}
    local priorities = {}
    for _, name in ipairs(parameter_names()) do
        local priority = string.match(name, "^rule[1-9]%d*$")
            and math.tointeger(tonumber(string.sub(name, 5)))
        if not priority then
            raise("unknown parameter '%s' (known parameters: rule<P>, where "
                  .. "P is the rulePriority, such as rule1 or rule20)", name)
        end
        defaults[name] = false
        priorities[#priorities + 1] = { name = name, priority = priority }
    end
    local params = regprune.parameters(POLICY, defaults)
    if #priorities == 0 then
        raise("at least one rule is required, for example --set 'rule1="
              .. "tagStatus=any countType=imageCountMoreThan countNumber=10'")
    end

    table.sort(priorities, function(a, b) return a.priority < b.priority end)
    local rules = {}
    for _, entry in ipairs(priorities) do
        rules[#rules + 1] = parse_rule(entry.name, entry.priority,
                                       params[entry.name])
    end

    local untagged = 0
    for i, rule in ipairs(rules) do
        if rule.status == "any" and i < #rules then
            raise("%s: a rule with tagStatus=any must have the highest "
                  .. "rulePriority, but %s comes after it", rule.name,
                  rules[#rules].name)
        end
        if rule.status == "untagged" then
            untagged = untagged + 1
        end
    end
    if untagged > 1 then
        raise("only one rule may have tagStatus=untagged")
    end
    return rules
end

-- Rules are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local rules = load_rules()

local format_duration = regprune.format_duration

-- Tells whether every entry of a list matches one of the image's tags.
local function every_entry_matches(entries, tags, matches)
    for _, entry in ipairs(entries) do
        local found = false
        for _, tag in ipairs(tags) do
            found = found or matches(tag.name, entry)
        end
        if not found then
            return false
        end
    end
    return true
end

local function selects(rule, image)
    if rule.status == "untagged" then
        return false
    elseif rule.prefixes then
        return every_entry_matches(rule.prefixes, image.tags, regprune.prefix)
    elseif rule.patterns then
        return every_entry_matches(rule.patterns, image.tags, regprune.glob)
    end
    return true
end

-- Returns the repository's images, each {digest, tags, pushed}, newest
-- first, with equal push times ordered by digest.
local function images_of(repo)
    local images = {}
    for _, image in ipairs(regprune.images(repo.tags)) do
        local pushed = 0
        for _, tag in ipairs(image.tags) do
            pushed = math.max(pushed, tag.pushed)
        end
        images[#images + 1] = { digest = image.digest, tags = image.tags,
                                pushed = pushed }
    end
    table.sort(images, function(a, b)
        if a.pushed ~= b.pushed then
            return a.pushed > b.pushed
        end
        return a.digest < b.digest
    end)
    return images
end

-- Returns whether the rule would expire the image and an explanation,
-- given the image's rank among the images the rule selects.
local function judge(rule, image, rank, selected)
    if rule.count_type == "imageCountMoreThan" then
        return rank > rule.count,
            string.format("image %d of %d matching %s, %s %d", rank,
                          selected, rule.selection,
                          rank > rule.count and "more than" or "keeping",
                          rule.count)
    end
    local age = regprune.now - image.pushed
    local age_text = age < 0 and "in the future"
        or format_duration(age) .. " ago"
    local expired = age > rule.count * DAY
    return expired, string.format("matching %s, pushed %s, %s %d days",
                                  rule.selection, age_text,
                                  expired and "more than" or "not more than",
                                  rule.count)
end

function policy(repo)
    local images = images_of(repo)
    local claimed = {}  -- image -> reason of the first rule that selects it
    local expired = {}  -- image -> reason of the rule that expires it

    for _, rule in ipairs(rules) do
        local selected = {}
        for _, image in ipairs(images) do
            if selects(rule, image) then
                selected[#selected + 1] = image
            end
        end
        for rank, image in ipairs(selected) do
            local expire, explanation = judge(rule, image, rank, #selected)
            if claimed[image] == nil then
                if expire then
                    expired[image] = rule.name .. " expires it: "
                        .. explanation
                end
                claimed[image] = rule.name .. " keeps it: " .. explanation
            end
        end
    end

    for _, image in ipairs(images) do
        for _, tag in ipairs(image.tags) do
            if expired[image] then
                delete(tag, expired[image])
            else
                keep(tag, claimed[image] or "no rule selects this image")
            end
        end
    end
end
