# bash completion for regprune(1). It completes:
#   - commands, and the options that apply to the command on the line;
#   - policy files, and the shipped policies, after --policy and
#     --policy-new;
#   - directories after --root, --trash and --empty-trash, and for restore;
#   - files after --in-use, --inventory, --expect, --log and --plan-out,
#     and for apply;
#   - parameter names after --set, from the --policy files on the line;
#   - repository names, or REPO:TAG for delete and explain.
# Repository and tag names come from `regprune --root DIR ls --json`, or
# from the --inventory file, and only when --root or --inventory is on the
# line, so that completion never scans a registry the user did not name.
# The listing is kept for 30 seconds per root.
#
# It needs only bash. The helpers of the bash-completion package are not
# required.

_regprune_commands="ls prune delete gc check explain diff restore apply"

# Options each command accepts, after the ones every command accepts.
_regprune_options_common="--root --config --jobs --verbose --quiet -v -q --help
    --version"
_regprune_options_ls="--json --inventory --sort"
_regprune_options_prune="--policy --set --now --dry-run --json --grace
    --strict --allow-empty --in-use --max-delete --max-delete-fraction
    --max-instructions --max-memory --policy-timeout --inventory --expect
    --trash --log --plan-out"
_regprune_options_delete="--dry-run --json --grace --strict --in-use
    --max-delete --max-delete-fraction --trash --log --plan-out"
_regprune_options_gc="--untagged --dry-run --json --grace --strict --trash
    --log --plan-out --empty-trash --older-than"
_regprune_options_check="--verify --json"
_regprune_options_explain="--policy --set --now --max-instructions
    --max-memory --policy-timeout --inventory"
_regprune_options_diff="--policy --policy-new --set --now --max-instructions
    --max-memory --policy-timeout --inventory"
_regprune_options_apply="--json --strict --trash --log"
_regprune_options_restore=""

# Options that take a value, as the next word or after "=".
_regprune_value_options="--root --config --sort --policy --policy-new --set --now --grace
    --in-use --max-delete --max-delete-fraction --max-instructions
    --max-memory --policy-timeout --inventory --expect --trash --log
    --plan-out --empty-trash --older-than --jobs"

# Print the shipped policy files: beside an installed regprune, then under
# the usual prefixes.
_regprune_shipped_policies()
{
    local bin dir
    local -a dirs=()

    bin=$(type -P regprune 2>/dev/null)
    if [[ -n $bin ]]; then
        dirs+=("${bin%/*}/../share/regprune/policies")
    fi
    dirs+=(/usr/local/share/regprune/policies /usr/share/regprune/policies)
    for dir in "${dirs[@]}"; do
        if [[ -d $dir ]]; then
            compgen -G "$dir/*.lua"
            return
        fi
    done
}

# Print the parameter names that the policy files declare in their
# defaults table, as the shipped policies do for regprune.parameters.
_regprune_policy_parameters()
{
    local file

    for file in "$@"; do
        [[ -r $file ]] || continue
        sed -n -E '/(DEFAULTS[[:space:]]*=|regprune\.parameters\().*\{/{
            s/.*\{//
            s/\}.*//
            s/([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[^,]*,?/\1\n/g
            p
        }' "$file" | sed -n -E 's/^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)$/\1/p'
    done | sort -u
}

# Set _regprune_cache to a "REPO" line for each repository and a
# "REPO:TAG" line for each tag. $1 is "root" or "inventory", $2 the path,
# and $3 the regprune program to run for a root. An inventory must be laid
# out as ls --json writes it. Runs in the calling shell, not in a command
# substitution, so that the cache outlives the call.
_regprune_listing()
{
    local source=$1 path=$2 program=${3-regprune} key="$1:$2" json

    if [[ ${_regprune_cache_key-} == "$key" &&
        $((SECONDS - _regprune_cache_time)) -lt 30 ]]; then
        return
    fi
    if [[ $source == inventory ]]; then
        json=$(cat -- "$path" 2>/dev/null)
    else
        json=$("$program" --root "$path" -q ls --json 2>/dev/null)
    fi
    # ls --json indents a repository's "name" by 6 spaces and a tag's by 10.
    _regprune_cache=$(printf '%s\n' "$json" | awk '
        /^      "name": "/ {
            repo = $0
            sub(/^      "name": "/, "", repo)
            sub(/",?$/, "", repo)
            print repo
        }
        /^          "name": "/ {
            tag = $0
            sub(/^          "name": "/, "", tag)
            sub(/",?$/, "", tag)
            print repo ":" tag
        }')
    _regprune_cache_key=$key
    _regprune_cache_time=$SECONDS
}

_regprune()
{
    local line cur prev word command="" root="" inventory="" value_option=""
    local options candidates prefix program i
    local -a words policies=() results=()

    # Split the line up to the cursor on whitespace alone, so that REPO:TAG
    # and --option=value stay one word whatever COMP_WORDBREAKS holds.
    line=${COMP_LINE:0:COMP_POINT}
    read -r -a words <<<"$line"
    if [[ $line =~ [[:space:]]$ ]]; then
        cur=""
        words+=("")
    else
        cur=${words[${#words[@]} - 1]}
    fi
    prev=""
    if ((${#words[@]} > 1)); then
        prev=${words[${#words[@]} - 2]}
    fi

    # Find the command and the options that matter for completion.
    for ((i = 1; i < ${#words[@]} - 1; i++)); do
        word=${words[i]}
        case $word in
        --root=*) root=${word#*=} ;;
        --inventory=*) inventory=${word#*=} ;;
        --policy=* | --policy-new=*) policies+=("${word#*=}") ;;
        --root | --inventory | --policy | --policy-new)
            case $word in
            --root) root=${words[i + 1]} ;;
            --inventory) inventory=${words[i + 1]} ;;
            *) policies+=("${words[i + 1]}") ;;
            esac
            ((i++))
            ;;
        -*)
            if [[ " ${_regprune_value_options//$'\n'/ } " == *" $word "* ]]; then
                ((i++))
            fi
            ;;
        *)
            if [[ -z $command ]]; then
                command=$word
            fi
            ;;
        esac
    done
    root=${root/#\~/$HOME}
    inventory=${inventory/#\~/$HOME}

    # The value of an option: "--option value" or "--option=value".
    if [[ $cur == --*=* ]]; then
        value_option=${cur%%=*}
        cur=${cur#*=}
        prefix="$value_option="
    elif [[ " ${_regprune_value_options//$'\n'/ } " == *" $prev "* ]]; then
        value_option=$prev
        prefix=""
    fi

    if [[ -n $value_option ]]; then
        case $value_option in
        --sort)
            mapfile -t results < <(compgen -W "name size reclaimable" -- "$cur")
            ;;
        --root | --trash | --empty-trash)
            compopt -o filenames 2>/dev/null
            mapfile -t results < <(compgen -d -- "$cur")
            ;;
        --policy | --policy-new)
            compopt -o filenames 2>/dev/null
            mapfile -t results < <(
                compgen -d -- "$cur"
                compgen -f -X '!*.lua' -- "$cur"
                _regprune_shipped_policies | while read -r word; do
                    [[ $word == "$cur"* ]] && printf '%s\n' "$word"
                done
            )
            ;;
        --in-use | --inventory | --expect | --log | --plan-out | --config)
            compopt -o filenames 2>/dev/null
            mapfile -t results < <(compgen -f -- "$cur")
            ;;
        --set)
            if [[ $cur != *=* ]]; then
                compopt -o nospace 2>/dev/null
                mapfile -t results < <(
                    _regprune_policy_parameters "${policies[@]}" |
                        while read -r word; do
                            [[ $word == "$cur"* ]] && printf '%s=\n' "$word"
                        done
                )
            fi
            ;;
        esac
        # With "=" in COMP_WORDBREAKS bash replaces only the value, and
        # otherwise the whole "--option=value" word.
        if [[ -n $prefix && $COMP_WORDBREAKS != *=* ]]; then
            results=("${results[@]/#/$prefix}")
        fi
        COMPREPLY=("${results[@]}")
        return 0
    fi

    if [[ $cur == -* ]]; then
        options=$_regprune_options_common
        if [[ -z $command ]]; then
            options+=" $_regprune_options_prune $_regprune_options_gc"
            options+=" --policy-new --verify"
        else
            local name="_regprune_options_${command}"
            options+=" ${!name}"
        fi
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return 0
    fi

    if [[ -z $command ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_regprune_commands" -- "$cur")
        return 0
    fi

    # apply takes the plan file, restore a trash run directory.
    case $command in
    apply)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    restore)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
        ;;
    esac

    # Repository names, and REPO:TAG for delete and explain.
    program=${words[0]/#\~/$HOME}
    if [[ -n $inventory ]]; then
        _regprune_listing inventory "$inventory"
    elif [[ -n $root ]]; then
        _regprune_listing root "$root" "$program"
    else
        return 0
    fi
    candidates=$_regprune_cache
    case $command in
    delete | explain)
        if [[ $cur == *:* ]]; then
            mapfile -t results < <(grep -F -- ":" <<<"$candidates" |
                while read -r word; do
                    [[ $word == "$cur"* ]] && printf '%s\n' "$word"
                done)
        else
            compopt -o nospace 2>/dev/null
            mapfile -t results < <(grep -v -F -- ":" <<<"$candidates" |
                while read -r word; do
                    [[ $word == "$cur"* ]] && printf '%s\n' "$word:"
                done)
        fi
        ;;
    ls | prune | check | diff)
        mapfile -t results < <(grep -v -F -- ":" <<<"$candidates" |
            while read -r word; do
                [[ $word == "$cur"* ]] && printf '%s\n' "$word"
            done)
        ;;
    esac
    # With ":" in COMP_WORDBREAKS bash replaces only what follows the last
    # colon of the word, so drop what comes before it.
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        prefix=${cur%"${cur##*:}"}
        results=("${results[@]#"$prefix"}")
    fi
    COMPREPLY=("${results[@]}")
    return 0
}

complete -F _regprune regprune
