#!/usr/bin/env bash
# contrib/demo.sh: watch git-credential-iam work end to end in about a minute, with no IAM
# account. It starts the test OpenID provider (tests/idp/server.js, account alice/wonderland)
# and a git server that accepts only tokens the provider says are valid, then clones through
# the helper: device-flow sign-in, cache hit, status, silent refresh. Everything runs on
# 127.0.0.1 in a temporary HOME that is deleted at the end; your own git config, helper
# config and token cache are never read or touched.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: contrib/demo.sh [--auto] [--help]

  --auto   approve the sign-in with tests/idp/approve.js instead of waiting for you
           (for machines without a browser, and for tests/it/demo.rs)
  --help   this text

Needs git (2.46+ for Bearer; older git is demoed in Basic mode), Node.js 20+, npm (once, to
install tests/idp), and cargo unless GIT_CREDENTIAL_IAM_BIN names a built helper.
EOF
}

auto=0
for arg in "$@"; do
  case $arg in
    --auto) auto=1 ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'demo: unknown option %s\n\n' "$arg" >&2; usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
idp=$root/tests/idp
section() { printf '\n=== %s ===\n' "$*"; }
say() { printf 'demo: %s\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' was not found on PATH: install $2"; }
# quote a word for the shell git runs the helper line with
shq() { if [[ $1 =~ ^[A-Za-z0-9_./:=@%+-]+$ ]]; then printf %s "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi; }
# poll SECS WHAT CMD...: run CMD every 0.1 s until it succeeds; fail after SECS seconds
poll() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

# ---- 1. tools and test provider packages
section "Checking the tools"
need git "git (https://git-scm.com/downloads, or your package manager's 'git')"
need node "Node.js 20 or later (https://nodejs.org/, or your package manager's 'nodejs')"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old: install Node.js 20 or later"
[[ -x "$(git --exec-path)/git-http-backend" ]] ||
  die "'git http-backend' is missing: install your distribution's full git package"
if [[ ! -d $idp/node_modules ]]; then
  need npm "npm (it comes with Node.js; on Debian/Ubuntu: apt install npm)"
  say "installing the test provider's packages (npm ci in tests/idp, once)"
  (cd "$idp" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in tests/idp failed"
fi
read -r git_major git_minor < <(git --version | sed -E 's/^git version ([0-9]+)\.([0-9]+).*/\1 \2/')
mode=bearer # git 2.46+ can send "Authorization: Bearer"; older git sends the token as a password
((git_major > 2 || (git_major == 2 && git_minor >= 46))) || mode=basic
say "git $git_major.$git_minor, node $(node --version), git server mode: $mode"

# ---- 2. the helper
if [[ -n ${GIT_CREDENTIAL_IAM_BIN:-} ]]; then
  bin=$GIT_CREDENTIAL_IAM_BIN
else
  need cargo "Rust and cargo (https://rustup.rs/)"
  section "Building git-credential-iam (cargo build --release --locked)"
  (cd "$root" && cargo build --release --locked) || die "cargo build failed"
  target=${CARGO_TARGET_DIR:-target}
  [[ $target == /* ]] || target=$root/$target
  bin=$target/release/git-credential-iam
fi
[[ -x $bin ]] || die "no helper binary at $bin"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
say "helper: $bin"

# ---- 3. a throwaway HOME; everything below happens in it, and it is removed on exit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/git-credential-iam-demo.XXXXXX")
server_pids=() clone_pid=
cleanup() {
  local rc=$?
  [[ -z $clone_pid ]] || kill -- "-$clone_pid" 2>/dev/null || true
  for p in ${server_pids[@]+"${server_pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${server_pids[@]+"${server_pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT # Ctrl-C
trap 'exit 143' TERM
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_STATE_HOME=$tmp/home/.local/state \
  XDG_CACHE_HOME=$tmp/home/.cache XDG_DATA_HOME=$tmp/home/.local/share
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset GIT_CONFIG_GLOBAL GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_ASKPASS SSH_ASKPASS GIT_DIR \
  http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
while read -r v; do unset "$v"; done < <(compgen -e | grep '^GIT_CREDENTIAL_IAM_' || true)
mkdir -p "$XDG_CONFIG_HOME" "$XDG_STATE_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"
cache=$tmp/home/token-cache

# ---- 4. the provider and the git server. Their stdin is a fifo whose only writer is this
# script (fd 3), so they exit by themselves even if the script is killed with SIGKILL.
section "Starting a test OpenID provider and a token-checking git server on 127.0.0.1"
mkfifo "$tmp/keepalive"
exec 3<>"$tmp/keepalive"
alive_with_line() { # FILE PID NAME: true once FILE holds a whole line; fails the demo if PID died
  (($(wc -l <"$1") >= 1)) && return 0
  kill -0 "$2" 2>/dev/null && return 1
  tail -n 20 "$tmp/$3.log" >&2 || true
  die "$3 exited before it was ready"
}
start_node() { # NAME SCRIPT ARGS...: start it and wait (bounded) for its JSON ready line
  local name=$1 script=$2; shift 2
  : >"$tmp/$name.out"
  node "$idp/$script" "$@" <"$tmp/keepalive" >"$tmp/$name.out" 2>"$tmp/$name.log" 3>&- &
  server_pids+=($!)
  poll 30 "$name's ready line" alive_with_line "$tmp/$name.out" "$!" "$name"
}
ready_field() { head -n 1 "$tmp/$1.out" | sed -E -n "s/.*\"$2\":\"?([^\",}]*).*/\\1/p"; }
start_node provider server.js
issuer=$(ready_field provider issuer)
say "provider: $issuer (account alice / wonderland, client public-cli)"

git init -q --bare -b main "$tmp/srv/repo.git"
git init -q -b main "$tmp/seed"
echo "hello from the git-credential-iam demo" >"$tmp/seed/README"
git -C "$tmp/seed" add README
git -C "$tmp/seed" -c user.name=Demo -c user.email=demo@example.org commit -q -m "demo: first commit"
git -C "$tmp/seed" push -q "$tmp/srv/repo.git" main
start_node git-server git-server.js --root "$tmp/srv" --issuer "$issuer" --mode "$mode"
git_url=$(ready_field git-server url)
repo_url=$git_url/repo.git
say "git server: $repo_url (every request needs a token the provider calls active)"

# counters: "DEVICE_AUTHORIZATIONS DEVICE_CODE_GRANTS REFRESH_GRANTS ALL_TOKEN_REQUESTS"
counters() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(10000) })
    .then((r) => r.json()).then((c) => { const t = c.token;
      console.log(c.device_authorization, t["urn:ietf:params:oauth:grant-type:device_code"] ?? 0,
        t.refresh_token ?? 0, Object.values(t).reduce((a, b) => a + b, 0)); })
    .catch((e) => { console.error(`demo: cannot read ${process.argv[1]}: ${e}`); process.exit(1); })' \
    "$issuer/__counters" 3>&-
}

# ---- 5. git config in the temporary HOME: for the git server's URL only, reset the helper
# list, then our helper only; --url ties the token to that server (nothing else gets it)
helper=("$bin" --issuer "$issuer" --client-id public-cli --url "$git_url/" --cache-dir "$cache")
helper_line="$(shq "$bin") --issuer $(shq "$issuer") --client-id public-cli --url $(shq "$git_url/") --interactive"
# --auto approves headlessly: no browser tab for a sign-in nobody does by hand
if ((auto)); then helper_line+=" --no-browser"; fi
helper_line+=" --cache-dir $(shq "$cache")"
git config --global "credential.$git_url.helper" ''
git config --global --add "credential.$git_url.helper" "$helper_line"
say "git config --global credential.$git_url.helper: $helper_line"

# ---- 6. first clone: no login yet, so the helper runs the device flow
section "First clone: sign in with the device flow"
echo "The helper prints a URL and a code below. The demo account is:"
echo "    login: alice    password: wonderland"
if ((auto)); then
  echo "(--auto: tests/idp/approve.js plays the person at the browser)"
  : >"$tmp/clone1.err"
  set -m # the clone gets its own process group, so cleanup stops git and the helper under it
  git clone "$repo_url" "$tmp/clone1" 3>&- 2> >(tee "$tmp/clone1.err" >&2) &
  clone_pid=$!
  set +m
  has_code() { grep -Eqs '^ +Code: +[A-Z]{4}-[A-Z]{4}' "$tmp/clone1.err" ||
    { kill -0 "$clone_pid" 2>/dev/null && return 1; die "git clone ended without a sign-in code"; }; }
  poll 30 "the helper's sign-in code" has_code
  code=$(sed -E -n 's/^ +Code: +([A-Z]{4}-[A-Z]{4}).*/\1/p' "$tmp/clone1.err" | head -n 1)
  say "approving code $code as alice: node tests/idp/approve.js --issuer $issuer --user-code $code"
  node "$idp/approve.js" --issuer "$issuer" --user-code "$code" 3>&- || die "approve.js could not approve $code"
  clone_done() { ! kill -0 "$clone_pid" 2>/dev/null; }
  poll 60 "the first git clone to finish" clone_done
  wait "$clone_pid" || { clone_pid=; die "the first git clone failed"; }
  clone_pid=
else
  echo "Open the URL in a browser on THIS machine (the provider listens on 127.0.0.1 only; on a"
  echo "desktop session the helper opens it for you), enter the code if asked, sign in, and allow"
  echo "access. No browser here? Run: contrib/demo.sh --auto"
  git clone "$repo_url" "$tmp/clone1" 3>&- || die "the first git clone failed"
fi
[[ -f $tmp/clone1/README ]] || die "the first clone has no README"
say "first clone succeeded: README says \"$(cat "$tmp/clone1/README")\""

# ---- 7a. second clone: the cached token, no provider request by the helper
section "Second clone: the token comes from the cache"
c=$(counters) || die "cannot read the provider's counters"
read -r da1 _ _ tok1 <<<"$c"
git clone -q "$repo_url" "$tmp/clone2" 3>&- || die "the second git clone failed"
c=$(counters) || die "cannot read the provider's counters"
read -r da2 _ rt2 tok2 <<<"$c"
((tok2 == tok1 && da2 == da1)) || die "the second clone asked the provider for a token ($tok1 -> $tok2)"
say "second clone succeeded: token endpoint requests before $tok1, after $tok2: 0 new (served from the cache)"

# ---- 7b. status, and the token action when this build has it
section "git-credential-iam status"
"$bin" --cache-dir "$cache" status </dev/null || die "status failed"

section "git-credential-iam token --format header"
out=$("${helper[@]}" token --format header </dev/null) || die "the token action failed"
# shorten the token itself: it is a throwaway, but transcripts get pasted around
sed -E 's/^(.* )?([^ ]{8})[^ ]{8,}$/\1\2... (shortened by the demo)/' <<<"$out"

# ---- 7c. silent refresh: --min-lifetime longer than the token's life forces one refresh
section "Silent refresh: a get that wants a longer-lived token than the cached one"
echo "git-credential-iam get --min-lifetime 999999 --non-interactive: the cached token lives 1 h,"
echo "so the helper swaps its refresh token for a new one, with no sign-in and no prompt."
out=$(printf 'protocol=http\nhost=%s\npath=repo.git\n\n' "${git_url#http://}" |
  "${helper[@]}" --non-interactive --min-lifetime 999999 get) || die "the refreshing get failed"
sed -E 's/^(password|credential)=.*/\1=<the new access token, not shown>/' <<<"$out"
c=$(counters) || die "cannot read the provider's counters"
read -r da3 _ rt3 _ <<<"$c"
((rt3 == rt2 + 1 && da3 == da2)) || die "expected one refresh and no sign-in (refresh grants $rt2 -> $rt3)"
say "refresh happened: refresh_token grants before $rt2, after $rt3 (no new sign-in)"

section "Done in ${SECONDS}s: sign-in, cache hit and silent refresh all worked"
say "the temporary HOME, cache and servers are being removed"
