# fish completion for git-credential-iam
#
# Install: copy to ~/.config/fish/completions/git-credential-iam.fish (or to
# /usr/share/fish/vendor_completions.d/).

set -l __gci_actions get store erase login logout status token import register setup

# Account names from the config file's [account.NAME] tables.
function __git_credential_iam_accounts
    set -l file
    if set -q GIT_CREDENTIAL_IAM_CONFIG; and test -n "$GIT_CREDENTIAL_IAM_CONFIG"
        set file $GIT_CREDENTIAL_IAM_CONFIG
    else if set -q XDG_CONFIG_HOME; and test -n "$XDG_CONFIG_HOME"
        set file $XDG_CONFIG_HOME/git-credential-iam/config.toml
    else
        set file $HOME/.config/git-credential-iam/config.toml
    end
    set -l words (commandline -opc)
    for i in (seq (count $words))
        if test "$words[$i]" = --config; and test $i -lt (count $words)
            set file $words[(math $i + 1)]
        else if string match -q -- '--config=*' $words[$i]
            set file (string replace -- '--config=' '' $words[$i])
        end
    end
    test -r "$file"; or return
    string replace -rf -- '^\s*\[account\."?([^\]"]*)"?\]\s*(#.*)?$' '$1' <$file
end

complete -c git-credential-iam -f

# Actions (one, anywhere among the options).
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a get -d "git's credential protocol (git runs this)"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a store -d "git's credential protocol (does nothing)"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a erase -d "git's credential protocol: drop a rejected token"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a login -d "Sign in now (device flow)"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a logout -d "Forget the tokens, revoke the refresh token"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a status -d "List cached logins"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a token -d "Print a valid access token"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a import -d "Seed the cache from a token on stdin"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a register -d "Register a new client as --account NAME"
complete -c git-credential-iam -n "not __fish_seen_subcommand_from $__gci_actions" -a setup -d "Set up git for a server URL in one command"

# Options.
complete -c git-credential-iam -l issuer -x -d "The OIDC issuer URL"
complete -c git-credential-iam -l client-id -x -d "The OAuth client id"
complete -c git-credential-iam -l client-secret-file -r -F -d "File holding the client secret"
complete -c git-credential-iam -l scope -x -a "openid offline_access profile email" -d "Scopes to ask for"
complete -c git-credential-iam -l audience -x -d "Audience of the token"
complete -c git-credential-iam -l resource -x -d "A resource the token is for (RFC 8707, repeatable)"
complete -c git-credential-iam -l account -x -a "(__git_credential_iam_accounts)" -d "A named account from the config file"
complete -c git-credential-iam -l url -x -d "A URL or host the token may go to (repeatable)"
complete -c git-credential-iam -l config -r -F -d "Config file"
complete -c git-credential-iam -l cache-dir -x -a "(__fish_complete_directories)" -d "Where tokens are cached"
complete -c git-credential-iam -l min-lifetime -x -d "Do not serve a token expiring sooner (seconds)"
complete -c git-credential-iam -l username -x -d "The username git is told in Basic mode"
complete -c git-credential-iam -l auth -x -a "auto basic bearer" -d "How git sends the token"
complete -c git-credential-iam -l interactive -d "Always allow the device flow"
complete -c git-credential-iam -l non-interactive -d "Never prompt; exit 3 when a login is needed"
complete -c git-credential-iam -l qr -d "Draw the sign-in link as a QR code"
complete -c git-credential-iam -l no-qr -d "No QR code of the sign-in link"
complete -c git-credential-iam -l browser -d "Open the sign-in page in a browser"
complete -c git-credential-iam -l no-browser -d "Do not open a browser"
complete -c git-credential-iam -l ca-file -r -F -d "Extra trusted CA certificates (PEM)"
complete -c git-credential-iam -l timeout -x -d "Network timeout per request (seconds)"
complete -c git-credential-iam -l lock-timeout -x -d "Longest wait for another process's login (seconds)"
complete -c git-credential-iam -l lock-mode -x -a "auto flock create" -d "How the account is locked (create on network file systems)"
complete -c git-credential-iam -l format -x -a "raw\t'the token and a newline' header\t'Authorization: Bearer TOKEN' json\t'JSON with expiry, issuer, scope' exec-credential\t'kubectl ExecCredential' wlcg\t'write the WLCG bearer token file'" -d "token: output format"
complete -c git-credential-iam -l access-token -d "import: stdin holds an access token"
complete -c git-credential-iam -l refresh-token -d "import: stdin holds a refresh token (the default)"
complete -c git-credential-iam -l expires-at -x -d "import --access-token: expiry (Unix seconds or RFC 3339)"
complete -c git-credential-iam -l flow -x -a "device password" -d "How a new login is made"
complete -c git-credential-iam -l password-file -r -F -d "Password flow: read the password from FILE"
complete -c git-credential-iam -l password-env -x -a "(set -n)" -d "Password flow: read the password from this variable"
complete -c git-credential-iam -l confidential -d "register: ask for a client with a secret"
complete -c git-credential-iam -l print -d "register: show the registration response"
complete -c git-credential-iam -l file -r -F -d "setup: write git's configuration to FILE, not --global"
complete -c git-credential-iam -l no-login -d "setup: do not sign in now, nor check"
complete -c git-credential-iam -l undo -d "setup: remove what setup URL added"
complete -c git-credential-iam -s h -l help -d "Show the usage"
complete -c git-credential-iam -s V -l version -d "Show the version"
