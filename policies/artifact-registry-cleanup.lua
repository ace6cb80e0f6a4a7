-- artifact-registry-cleanup: Google Artifact Registry cleanup policies. A
-- version is deleted when it matches at least one delete policy and no
-- keep policy: keep wins over delete, and a version that no delete policy
-- matches is kept.
--
-- A version is an image, a digest with all its tags, and a package is a
-- repository. All tags of a version share its verdict, and keepCount
-- counts versions, not tags. A version's age is measured from the most
-- recent push of any of its tags, because the registry's storage keeps
-- no separate upload time that policies can read.
--
-- Parameters (set with --set NAME=VALUE), one per cleanup policy:
--   delete.<id>  a delete policy with conditions.
--   keep.<id>    a keep policy, with conditions or with keepCount.
-- <id> is the policy's name (letters, digits, - and _), used in reasons.
-- At least one policy is required. The value is KEY=VALUE words separated
-- by spaces, with the keys of the policy's "condition" object or of its
-- "mostRecentVersions" object:
--   tagState=tagged|untagged|any   default any. untagged matches nothing
--                     here, because policies see tags only. regprune gc
--                     --untagged removes untagged manifests.
--   tagPrefixes=P1,P2          a tag of the version starts with one of the
--                              prefixes.
--   versionNamePrefixes=P1,P2  the digest, such as sha256:4f2a, starts with
--                              one of the prefixes.
--   packageNamePrefixes=P1,P2  the repository name starts with one of the
--                              prefixes.
--   olderThan=DURATION  the version is older than DURATION, such as 30d
--                       (units s, m, h, d, w).
--   newerThan=DURATION  the version is newer than DURATION.
--   keepCount=N   keep policies only: keep the N most recently pushed
--                 versions of each package that packageNamePrefixes
--                 selects (every package when it is not given). keepCount
--                 cannot be combined with conditions, as in Artifact
--                 Registry.
-- A policy matches a version when all of its conditions do.
--
-- Reasons read like "delete.old-dev matches (tagPrefixes=dev- olderThan=30d)
-- and no keep policy does" or "kept by keep.recent: version 2 of 9 by push
-- time, keepCount 5".
--
-- Example: delete test images after 30 days but keep the 5 newest of each
-- repository and every release.
--   regprune prune --policy policies/artifact-registry-cleanup.lua \
--       --set 'delete.old-tests=tagPrefixes=test- olderThan=30d' \
--       --set 'keep.recent=keepCount=5' \
--       --set 'keep.releases=tagPrefixes=v' --dry-run

local POLICY = "artifact-registry-cleanup"
local LIST_KEYS = { tagPrefixes = true, versionNamePrefixes = true,
                    packageNamePrefixes = true }
-- Condition keys that a keepCount policy cannot have. packageNamePrefixes
-- belongs to both kinds of policy.
local CONDITION_KEYS = { "tagState", "tagPrefixes", "versionNamePrefixes",
                         "olderThan", "newerThan" }

local function raise(format, ...)
    error(POLICY .. ": " .. string.format(format, ...), 0)
end

local function parse_duration(name, key, value)
    local ok, seconds = pcall(regprune.duration, value)
    if not ok or type(seconds) ~= "number" then
        raise("%s: %s must be a duration such as 30d (units s, m, h, d, w), "
              .. "got '%s'", name, key, value)
    end
    return seconds
end

local function split_list(name, key, value)
    local items = {}
    for item in string.gmatch(value, "[^,]+") do
        items[#items + 1] = item
    end
    if #items == 0 then
        raise("%s: %s needs at least one prefix, got '%s'", name, key, value)
    end
    return items
end

local function parse_policy(name, action, text)
    local parsed = { name = name, action = action, text = text,
                     tag_state = "any" }
    local seen = {}
    for word in string.gmatch(text, "%S+") do
        local key, value = string.match(word, "^(%a+)=(.*)$")
        if key and seen[key] then
            raise("%s: %s appears twice", name, key)
        end
        if key == "tagState" then
            if value ~= "tagged" and value ~= "untagged" and value ~= "any"
            then
                raise("%s: tagState must be tagged, untagged or any, got "
                      .. "'%s'", name, value)
            end
            parsed.tag_state = value
        elseif LIST_KEYS[key] then
            parsed[key] = split_list(name, key, value)
        elseif key == "olderThan" or key == "newerThan" then
            parsed[key] = parse_duration(name, key, value)
        elseif key == "keepCount" then
            parsed.keep_count = string.match(value, "^%d+$")
                and math.tointeger(tonumber(value))
            if not parsed.keep_count then
                raise("%s: keepCount must be a whole number >= 0, got '%s'",
                      name, value)
            end
        else
            raise("%s: unknown word '%s', expected tagState, tagPrefixes, "
                  .. "versionNamePrefixes, packageNamePrefixes, olderThan, "
                  .. "newerThan or keepCount as KEY=VALUE", name, word)
        end
        seen[key] = true
    end
    if parsed.keep_count then
        if action == "delete" then
            raise("%s: keepCount belongs in a keep policy", name)
        end
        for _, key in ipairs(CONDITION_KEYS) do
            if seen[key] then
                raise("%s: keepCount cannot be combined with the condition "
                      .. "%s. Put the condition in a second keep policy",
                      name, key)
            end
        end
    end
    if parsed.tag_state == "untagged" and parsed.tagPrefixes then
        raise("%s: tagPrefixes cannot match with tagState=untagged", name)
    end
    return parsed
end

local function load_policies()
    -- Parameter names carry the policy names, so the known names are those
    -- given. Any other name is rejected here with a message that explains
    -- them.
    local names = {}
    for name in pairs(regprune.params) do
        names[#names + 1] = name
    end
    table.sort(names)

    local defaults = {}
    for _, name in ipairs(names) do
        if not string.match(name, "^delete%.[%w_%-]+$")
                and not string.match(name, "^keep%.[%w_%-]+$") then
            raise("unknown parameter '%s' (known parameters: delete.<id> and "
                  .. "keep.<id>, such as delete.old-tests)", name)
        end
        defaults[name] = false
    end
    local params = regprune.parameters(POLICY, defaults)

    local policies = { delete = {}, keep = {} }
    for _, name in ipairs(names) do
        local action = string.match(name, "^(%a+)%.")
        table.insert(policies[action],
                     parse_policy(name, action, params[name]))
    end
    if #policies.delete + #policies.keep == 0 then
        raise("at least one policy is required, for example --set "
              .. "'delete.old=olderThan=30d'")
    end
    return policies
end

-- Policies are the same for every repository, so they are checked once,
-- while the file loads, before any repository is judged.
local policies = load_policies()

local function any_prefix(s, prefixes)
    for _, prefix in ipairs(prefixes) do
        if regprune.prefix(s, prefix) then
            return true
        end
    end
    return false
end

-- Tells whether every condition of a policy holds for the version. Every
-- version has a tag here, so tagState=untagged never holds.
local function conditions_hold(policy_entry, repo, version)
    local age = regprune.now - version.pushed
    if policy_entry.tag_state == "untagged" then
        return false
    end
    if policy_entry.tagPrefixes then
        local found = false
        for _, tag in ipairs(version.tags) do
            found = found or any_prefix(tag.name, policy_entry.tagPrefixes)
        end
        if not found then
            return false
        end
    end
    if policy_entry.versionNamePrefixes
            and not any_prefix(version.digest,
                               policy_entry.versionNamePrefixes) then
        return false
    end
    if policy_entry.packageNamePrefixes
            and not any_prefix(repo.name, policy_entry.packageNamePrefixes)
    then
        return false
    end
    if policy_entry.olderThan and not (age > policy_entry.olderThan) then
        return false
    end
    if policy_entry.newerThan and not (age < policy_entry.newerThan) then
        return false
    end
    return true
end

-- Returns the repository's versions, each {digest, tags, pushed}, newest
-- first, with equal push times ordered by digest.
local function versions_of(repo)
    local versions = {}
    for _, image in ipairs(regprune.images(repo.tags)) do
        local pushed = 0
        for _, tag in ipairs(image.tags) do
            pushed = math.max(pushed, tag.pushed)
        end
        versions[#versions + 1] = { digest = image.digest,
                                    tags = image.tags, pushed = pushed }
    end
    table.sort(versions, function(a, b)
        if a.pushed ~= b.pushed then
            return a.pushed > b.pushed
        end
        return a.digest < b.digest
    end)
    return versions
end

-- Returns why a keep policy keeps the version at this rank, or nil.
local function kept_by(policy_entry, repo, version, rank, count)
    if policy_entry.keep_count == nil then
        if conditions_hold(policy_entry, repo, version) then
            return "kept by " .. policy_entry.name .. " ("
                .. policy_entry.text .. ")"
        end
        return nil
    end
    if policy_entry.packageNamePrefixes
            and not any_prefix(repo.name, policy_entry.packageNamePrefixes)
    then
        return nil
    end
    if rank <= policy_entry.keep_count then
        return string.format("kept by %s: version %d of %d by push time, "
                             .. "keepCount %d", policy_entry.name, rank,
                             count, policy_entry.keep_count)
    end
    return nil
end

function policy(repo)
    local versions = versions_of(repo)
    for rank, version in ipairs(versions) do
        local keep_reason = nil
        for _, keep_policy in ipairs(policies.keep) do
            keep_reason = keep_reason
                or kept_by(keep_policy, repo, version, rank, #versions)
        end
        local deleting = nil
        for _, delete_policy in ipairs(policies.delete) do
            if deleting == nil
                    and conditions_hold(delete_policy, repo, version) then
                deleting = delete_policy
            end
        end
        for _, tag in ipairs(version.tags) do
            if keep_reason and deleting then
                keep(tag, keep_reason .. ", which wins over "
                     .. deleting.name)
            elseif keep_reason then
                keep(tag, keep_reason)
            elseif deleting then
                delete(tag, deleting.name .. " matches (" .. deleting.text
                       .. ") and no keep policy does")
            else
                keep(tag, "no delete policy matches")
            end
        end
    end
end
