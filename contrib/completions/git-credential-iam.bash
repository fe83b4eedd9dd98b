# bash completion for git-credential-iam                       -*- shell-script -*-
#
# Install: copy to /usr/share/bash-completion/completions/git-credential-iam (or
# ~/.local/share/bash-completion/completions/git-credential-iam), or source it from ~/.bashrc.

# Account names from the config file's [account.NAME] tables.
_git_credential_iam_accounts()
{
    local file=${GIT_CREDENTIAL_IAM_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/git-credential-iam/config.toml}
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        if [[ ${COMP_WORDS[i]} == --config ]]; then
            file=${COMP_WORDS[i + 1]}
        elif [[ ${COMP_WORDS[i]} == --config=* ]]; then
            file=${COMP_WORDS[i]#--config=}
        fi
    done
    file=${file/#\~/$HOME}
    [[ -r $file ]] || return 0
    sed -n 's/^[[:space:]]*\[account\.\("\{0,1\}\)\([^]"]*\)\1\][[:space:]]*\(#.*\)\{0,1\}$/\2/p' "$file" 2>/dev/null
}

_git_credential_iam()
{
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}

    local actions="get store erase login logout status token import register setup"
    local options="--issuer --client-id --client-secret-file --scope --audience --resource --account --url
        --config --cache-dir --min-lifetime --username --auth --interactive --non-interactive
        --qr --no-qr --browser --no-browser --ca-file --timeout --lock-timeout --lock-mode --format
        --access-token --refresh-token --expires-at
        --flow --password-file --password-env --confidential --print --file --no-login --undo
        --help --version"

    # --name=value: with "=" in COMP_WORDBREAKS (the default) bash splits it into three words
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    case $prev in
    --format)
        mapfile -t COMPREPLY < <(compgen -W "raw header json exec-credential wlcg" -- "$cur")
        return
        ;;
    --auth)
        mapfile -t COMPREPLY < <(compgen -W "auto basic bearer" -- "$cur")
        return
        ;;
    --flow)
        mapfile -t COMPREPLY < <(compgen -W "device password" -- "$cur")
        return
        ;;
    --lock-mode)
        mapfile -t COMPREPLY < <(compgen -W "auto flock create" -- "$cur")
        return
        ;;
    --password-env)
        mapfile -t COMPREPLY < <(compgen -v -- "$cur")
        return
        ;;
    --account)
        mapfile -t COMPREPLY < <(compgen -W "$(_git_credential_iam_accounts)" -- "$cur")
        return
        ;;
    --config | --client-secret-file | --ca-file | --password-file | --file)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        compopt -o filenames 2>/dev/null
        return
        ;;
    --cache-dir)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        compopt -o filenames 2>/dev/null
        return
        ;;
    --scope)
        mapfile -t COMPREPLY < <(compgen -W "openid offline_access profile email" -- "$cur")
        return
        ;;
    --issuer | --client-id | --audience | --resource | --min-lifetime | --username | --timeout | \
        --lock-timeout | --expires-at)
        return # a free value
        ;;
    esac

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return
    fi

    # An action, unless one was given already.
    local i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case " $actions " in
        *" $w "*)
            case ${COMP_WORDS[i - 1]} in
            --issuer | --client-id | --client-secret-file | --scope | --audience | --resource | --account | --url | \
                --config | --cache-dir | --min-lifetime | --username | --auth | --ca-file | \
                --timeout | --lock-timeout | --lock-mode | --format | --expires-at | --flow | --password-file | \
                --password-env | --file) ;;
            *) return ;;
            esac
            ;;
        esac
    done
    mapfile -t COMPREPLY < <(compgen -W "$actions" -- "$cur")
}

complete -F _git_credential_iam git-credential-iam
