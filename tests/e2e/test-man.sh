#!/usr/bin/env bash
# Man pages and shell completion (docs/man/helpdoc.py, built from the
# programs' --help and option tables): each page renders with no troff
# warning; every option a command's parser takes is in its --help and in
# hocus-blk(1), every option of blockd --help in blockd(8), and the check
# fails when one is missing; bash completes commands, sub-commands and
# options, and zsh reads its file.
. "$TESTS_DIR/functions.sh"
requires man python3
: "${BLOCKD:?}"
M=$BUILD_DIR/docs/man
HELPDOC=$TESTS_DIR/../docs/man/helpdoc.py

for page in "$M/hocus-blk.1" "$M/blockd.8" "$M/hocus-blk-format.5"; do
        [ -s "$page" ] || fail "$page was not built"
        MANWIDTH=80 man -l --warnings "$page" >"$T/page.txt" 2>"$T/warn.txt" || fail "man -l $page failed: $(cat "$T/warn.txt")"
        [ ! -s "$T/warn.txt" ] || fail "man -l --warnings $page: $(cat "$T/warn.txt")"
        [ "$(wc -l <"$T/page.txt")" -gt 40 ] || fail "$page renders to almost nothing"
done
MANWIDTH=80 man -l "$M/hocus-blk.1" | grep -q -- '--chunk-size SIZE' || fail "hocus-blk(1) lacks push --chunk-size"
MANWIDTH=80 man -l "$M/blockd.8" | grep -q -- '--nbd-listen HOST:PORT' || fail "blockd(8) lacks --nbd-listen"
MANWIDTH=80 man -l "$M/hocus-blk-format.5" | grep -q 'HOCUSIDX' || fail "hocus-blk-format(5) lacks the index magic"

python3 "$HELPDOC" check --hocus-blk "$HOCUS_BLK" --blockd "$BLOCKD" --man "$M/hocus-blk.1" --blockd-man "$M/blockd.8" ||
        fail "an option is missing from --help or a man page"

# The check must catch: an option missing from a man page ...
grep -v -- 'print the result as a JSON object' "$M/hocus-blk.1" | sed 's/\\-\\-json/--gone/g' >"$T/short.1"
if python3 "$HELPDOC" check --hocus-blk "$HOCUS_BLK" --man "$T/short.1" 2>"$T/check.err"; then
        fail "the check passed with --json missing from the man page"
fi
grep -q 'hocus-blk(1): no --json' "$T/check.err" || fail "check: $(cat "$T/check.err")"
sed 's/\\-\\-nbd\\-listen/nbd-listen/g' "$M/blockd.8" >"$T/short.8"
if python3 "$HELPDOC" check --hocus-blk "$HOCUS_BLK" --blockd "$BLOCKD" --blockd-man "$T/short.8" 2>"$T/check.err"; then
        fail "the check passed with --nbd-listen missing from blockd(8)"
fi
grep -q 'blockd(8): no --nbd-listen' "$T/check.err" || fail "check: $(cat "$T/check.err")"
# ... and an option the parser takes that --help does not list.
cat >"$T/hb-wrapper" <<EOS
#!/bin/sh
if [ "\$1" = pull ] && [ "\$2" = --help ]; then "$HOCUS_BLK" "\$@" | grep -v -- '--range-size'; else exec "$HOCUS_BLK" "\$@"; fi
EOS
chmod +x "$T/hb-wrapper"
if python3 "$HELPDOC" check --hocus-blk "$T/hb-wrapper" 2>"$T/check.err"; then
        fail "the check passed with --range-size missing from pull --help"
fi
grep -q 'hocus-blk pull: --range-size is accepted but not in --help' "$T/check.err" || fail "check: $(cat "$T/check.err")"

# complete WORDS...: what bash completion offers for the last word.
complete_bash() {
        bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _${COMP_WORDS[0]//-/_}; echo "${COMPREPLY[*]}"' \
                _ "$M/hocus-blk" "$@"
}
assert_eq "$(complete_bash hocus-blk pu)" "push pull" "bash: commands"
assert_eq "$(complete_bash hocus-blk push --js)" "--json" "bash: push options"
assert_eq "$(complete_bash hocus-blk profile sh)" "show" "bash: profile sub-commands"
assert_eq "$(complete_bash hocus-blk cache v)" "verify" "bash: cache sub-commands"
assert_eq "$(complete_bash hocus-blk export --cre)" "--creds --creds-file" "bash: common options"
assert_eq "$(complete_bash blockd --nbd-l)" "--nbd-listen" "bash: blockd options"
mkdir "$T/dir" && touch "$T/dir/disk.img"
assert_eq "$(complete_bash hocus-blk push --cache "$T/dir/d")" "$T/dir/disk.img" "bash: an option's argument is a file"

# check_verbs "WORD..." SHELL: the offered profile sub-commands are push,
# show, get and merge among others, each once, and each one that
# 'hocus-blk profile --help' lists as a command.
check_verbs() {
        local w
        for w in push show get merge; do
                [[ " $1 " == *" $w "* ]] || fail "$2: profile sub-commands lack $w: '$1'"
        done
        [ "$(tr ' ' '\n' <<<"$1" | grep -c .)" = "$(tr ' ' '\n' <<<"$1" | grep . | sort -u | wc -l)" ] ||
                fail "$2: a profile sub-command offered twice: '$1'"
        for w in $1; do
                hb profile --help | grep -q "^  $w " || fail "$2: '$w' is no profile sub-command"
        done
}

# zsh_complete SERVICE WORDS...: the candidates _hocus-blk hands to zsh's
# completion system (stubbed: zsh filters them by prefix itself).
zsh_complete() {
        zsh -f -c '
                _describe() { print -l -- ${(P)4}; }
                compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }
                _files() { print FILES; }
                f=$1; service=$2; shift 2; words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}
                source "$f"' _ "$M/_hocus-blk" "$@"
}
if command -v zsh >/dev/null; then
        zsh -n "$M/_hocus-blk" || fail "zsh: syntax error in _hocus-blk"
        zsh_complete hocus-blk hocus-blk pu >"$T/z"
        grep -qx 'push:chunk a raw disk image and store it under a reference' "$T/z" || fail "zsh: commands: $(cat "$T/z")"
        zsh_complete hocus-blk hocus-blk push --j >"$T/z"
        grep -qx -- '--json:print the result as a JSON object' "$T/z" || fail "zsh: push options: $(cat "$T/z")"
        check_verbs "$(zsh_complete hocus-blk hocus-blk profile s | tr '\n' ' ')" "zsh"
        zsh_complete blockd blockd --nbd-l >"$T/z"
        grep -qx -- '--nbd-listen:NBD on TCP (PORT 0 picks a free port, logged)' "$T/z" || fail "zsh: blockd: $(cat "$T/z")"
        assert_eq "$(zsh_complete hocus-blk hocus-blk push disk)" FILES "zsh: arguments are files"
fi
check_verbs "$(complete_bash hocus-blk profile '')" "bash"
echo ok
