#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Man pages and shell completion from the programs themselves.

The one source of every option is the program's option table: blockd's
--help is printed from it (common/opttable.c), each hocus-blk command's
--help lists its options and HOCUS_BLK_LIST_OPTIONS=1 makes the command's
parser print what it accepts (cli_getopt). This script, run by the build
against the freshly built binaries, turns that into
  man     hocus-blk(1) or blockd(8): a template (*.in) with the --help
          texts filled in (@COMMANDS@, @COMMON_OPTIONS@, @OPTIONS@)
  format  hocus-blk-format(5) from docs/FORMAT.md
  bash    bash completion (_hocus_blk, _blockd)
  zsh     zsh completion (_hocus-blk)
  check   exit 1 when a command's parser accepts an option its --help does
          not document, or --help documents one the parser refuses, or a
          man page misses an option of --help
"""
import argparse
import os
import re
import subprocess
import sys

OPT_LINE = re.compile(r"^  (?:-(\w), )?--([a-z0-9][a-z0-9-]*)(?:[ =](\S+))?")


def run(argv, extra_env=None):
    env = dict(os.environ)
    env.pop("HOCUS_BLK_LIST_OPTIONS", None)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    env.update(extra_env or {})
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr))
    return p.stdout


def sections(text):
    """--help text as (heading, lines): the text before the first heading
    has heading None; a heading is a line at column 0 ending in ':'."""
    out, head, cur = [], None, []
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:$", line):
            out.append((head, cur))
            head, cur = line[:-1], []
        else:
            cur.append(line)
    out.append((head, cur))
    return out


def commands(hb):
    """[(name, summary)] from 'hocus-blk --help'."""
    for head, lines in sections(run([hb, "--help"])):
        if head == "Commands":
            return [tuple(l.strip().split(None, 1)) for l in lines if l.startswith("  ") and l.strip()]
    sys.exit("no Commands: section in hocus-blk --help")


def help_options(text):
    """{long name: (short, argument)} of the option lines of a --help text."""
    opts = {}
    for line in text.splitlines():
        m = OPT_LINE.match(line)
        if m:
            opts[m.group(2)] = (m.group(1), m.group(3))
    return opts


def parser_options(hb, cmd):
    """What a hocus-blk command's parser accepts: ({long: takes_arg}, {short})."""
    longs, shorts = {}, set()
    env = dict(os.environ, HOCUS_BLK_LIST_OPTIONS="1")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    p = subprocess.run([hb, cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0 or not p.stdout.strip():
        sys.exit("hocus-blk %s does not list its options: parse them with cli_getopt() (cli/cli.h) "
                 "so that --help, the man page and completion can be checked against the parser" % cmd)
    for w in p.stdout.split():
        if w.startswith("--"):
            longs[w[2:].rstrip("=")] = w.endswith("=")
        else:
            shorts.add(w[1:])
    return longs, shorts


# --- roff ------------------------------------------------------------------

def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return s


def line_start(s):
    return "\\&" + s if s[:1] in (".", "'") else s


def roff_block(lines):
    """--help lines as roff: column-0 text as paragraphs, indented items
    ("  TAG   text" and their continuation lines) as tagged paragraphs."""
    out, para, item = [], [], None

    def flush():
        nonlocal para, item
        if para:
            out.append(".PP")
            out.append(line_start(esc(" ".join(para))))
            para = []
        if item:
            out.append(".TP")
            out.append(line_start("\\fB%s\\fR" % esc(item[0]) if item[0].startswith("-") else esc(item[0])))
            out.append(line_start(esc(" ".join(item[1])) if item[1] else "\\&"))
            item = None

    for line in lines:
        if not line.strip():
            flush()
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 2:
            m = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
            flush()
            item = (m.group(1), [m.group(2)] if m.group(2) else [])
        elif indent > 2 and item:
            item[1].append(line.strip())
        elif indent > 2:
            flush()
            out.append(".RS\n.nf\n%s\n.fi\n.RE" % line_start(esc(line.strip())))
        else:
            if item:
                flush()
            para.append(line.strip())
    flush()
    return out


def command_section(hb, name, summary):
    text = run([hb, name, "--help"])
    out = []
    for head, lines in sections(text):
        if head is None:
            usage = [l for l in lines if l.startswith("Usage: ")]
            rest = [l for l in lines if not l.startswith("Usage: ")]
            title = usage[0][len("Usage: "):] if usage else "hocus-blk " + name
            out.append('.SS "%s"' % esc(title))
            if not any(l.strip() for l in rest):
                rest = [summary[:1].upper() + summary[1:] + "."]
            out += roff_block(rest)
        elif head == "Common options":
            out.append(".PP\nAnd the common options (see \\fBCOMMON OPTIONS\\fR).")
        else:
            out.append(".PP\n\\fI%s:\\fR" % esc(head))
            out += roff_block(lines)
    return out


def fill(template, values):
    text = open(template).read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, v)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        sys.exit("%s: unfilled %s" % (template, " ".join(left)))
    return text


def man_hocus_blk(args):
    hb = args.hocus_blk
    out = []
    for name, summary in commands(hb):
        out += command_section(hb, name, summary)
    common = [lines for head, lines in sections(run([hb, "push", "--help"])) if head == "Common options"][0]
    return fill(args.template, {"VERSION": args.version, "COMMANDS": "\n".join(out),
                                "COMMON_OPTIONS": "\n".join(roff_block(common))})


def man_blockd(args):
    out = []
    for head, lines in sections(run([args.blockd, "--help"])):
        if head is None:
            continue
        out.append('.SS "%s"' % esc(head))
        out += roff_block(lines)
    return fill(args.template, {"VERSION": args.version, "OPTIONS": "\n".join(out)})


def inline_md(s):
    s = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", s)
    parts = re.split(r"(`[^`]*`|\*\*[^*]+\*\*)", s)
    out = []
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            code = p[1:-1]
            if len(code) > 30:      # a digest: let troff break it
                code = "\x01".join(code[k:k + 16] for k in range(0, len(code), 16))
            out.append("\\fB%s\\fR" % esc(code).replace("\x01", "\\:"))
        elif p.startswith("**") and p.endswith("**"):
            out.append("\\fB%s\\fR" % esc(p[2:-2]))
        else:
            out.append(esc(p))
    return "".join(out)


def man_format(args):
    """docs/FORMAT.md (headings, paragraphs, lists, tables, code) as roff."""
    md = open(args.markdown).read().splitlines()
    out = ['.TH HOCUS-BLK-FORMAT 5 "" "hocus-blk %s" "File Formats"' % args.version,
           ".ad l", ".SH NAME", "hocus-blk-format \\- the hocus-blk image format, version 1"]
    para, in_code, i = [], False, 0

    def flush():
        nonlocal para
        if para:
            out.append(line_start(inline_md(" ".join(para))))
            para = []

    while i < len(md):
        line = md[i]
        i += 1
        if line.startswith("```"):
            flush()
            in_code = not in_code
            out.append(".PP\n.RS\n.nf" if in_code else ".fi\n.RE")
            continue
        if in_code:
            out.append(line_start(esc(line)))
            continue
        if not line.strip():
            flush()
            continue
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m:
            flush()
            if len(m.group(1)) == 1:
                out.append(".SH DESCRIPTION\n.PP")
                out.append(line_start(inline_md(m.group(2))) + ".")
            else:
                out.append('.SH "%s"' % inline_md(m.group(2)).upper() if len(m.group(1)) == 2
                           else '.SS "%s"' % inline_md(m.group(2)))
            continue
        if line.startswith("|"):
            flush()
            rows = [line]
            while i < len(md) and md[i].startswith("|"):
                rows.append(md[i])
                i += 1
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows
                     if not re.match(r"^\|[-| :]+\|$", r)]
            out.append(".PP\n.TS\nallbox;\n%s." % " ".join("l" for _ in cells[0]))
            for row in cells:
                out.append("\t".join("T{\n%s\nT}" % inline_md(c) for c in row))
            out.append(".TE")
            continue
        m = re.match(r"^(\s*)(-|\d+\.)\s+(.*)$", line)
        if m:
            flush()
            out.append(".IP %s 4" % ("\\(bu" if m.group(2) == "-" else m.group(2)) if not m.group(1)
                       else ".RS 4\n.IP \\(bu 4\n.RE")
            para.append(m.group(3))
            continue
        if not para and not (out[-1].startswith(".IP") or out[-1].startswith(".RS")):
            out.append(".PP")
        para.append(line.strip())
    flush()
    out += [".SH SEE ALSO", "\\fBhocus-blk\\fR(1), \\fBblockd\\fR(8)"]
    return "\n".join(out) + "\n"


# --- completion --------------------------------------------------------------

def subverbs(text):
    """A command's own sub-commands: 'cache stats|verify|gc' in its usage
    line, or the items of a Commands: section."""
    for head, lines in sections(text):
        if head == "Commands":     # one item per form: "push REF FILE", "push REF --learned"
            return list(dict.fromkeys(l.split()[0] for l in lines if re.match(r"^  \S", l)))
    m = re.search(r"^Usage: \S+ \S+ ([a-z]+(?:\|[a-z]+)+)", text, re.M)
    return m.group(1).split("|") if m else []


def completion_model(args):
    hb = args.hocus_blk
    model = []
    for name, summary in commands(hb):
        longs, shorts = parser_options(hb, name)
        text = run([hb, name, "--help"])
        doc = help_options(text)
        opts = [("--" + n, longs[n], doc_line(text, n)) for n in longs]
        opts += [("-" + s, False, "") for s in sorted(shorts)]
        model.append((name, summary, opts, subverbs(text)))
    btext = run([args.blockd, "--help"])
    bopts = [("--" + n, a is not None, doc_line(btext, n)) for n, (s, a) in help_options(btext).items()]
    return model, bopts


def doc_line(text, name):
    """The first line of an option's help (the line below when the option
    and its argument fill the left column)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = OPT_LINE.match(line)
        if m and m.group(2) == name:
            rest = line[m.end():].strip()
            if not rest and i + 1 < len(lines) and not OPT_LINE.match(lines[i + 1]):
                rest = lines[i + 1].strip()
            return rest
    return ""


def bash(args):
    model, bopts = completion_model(args)
    cases, argopts = [], set()
    for name, summary, opts, verbs in model:
        cases.append("        %s) opts=%s; verbs=%s ;;" % (name, shq(" ".join(o for o, _, _ in opts)),
                                                       shq(" ".join(verbs))))
        argopts |= {o for o, a, _ in opts if a}
    argopts |= {o for o, a, _ in bopts if a}
    return """# bash completion for hocus-blk and blockd. Generated by docs/man/helpdoc.py
# from the programs' option tables: do not edit.

# _hocus_blk_takes_arg OPT: whether OPT wants an argument (completed as a file).
_hocus_blk_takes_arg() {
        case " %(argopts)s " in *" $1 "*) return 0 ;; esac
        return 1
}

_hocus_blk() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd opts verbs
        if [[ $COMP_CWORD -eq 1 ]]; then
                COMPREPLY=($(compgen -W %(commands)s -- "$cur"))
                return
        fi
        cmd=${COMP_WORDS[1]}
        case $cmd in
%(cases)s
        *) return ;;
        esac
        if _hocus_blk_takes_arg "$prev"; then
                COMPREPLY=($(compgen -f -- "$cur"))
        elif [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        elif [[ -n $verbs && $COMP_CWORD -eq 2 ]]; then
                COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        else
                COMPREPLY=($(compgen -f -- "$cur"))
        fi
}
complete -o filenames -F _hocus_blk hocus-blk

_blockd() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
        if _hocus_blk_takes_arg "$prev"; then
                COMPREPLY=($(compgen -f -- "$cur"))
        else
                COMPREPLY=($(compgen -W %(bopts)s -- "$cur"))
        fi
}
complete -o filenames -F _blockd blockd
""" % {"argopts": " ".join(sorted(argopts)), "commands": shq(" ".join(n for n, _, _, _ in model) + " --help --version"),
       "cases": "\n".join(cases), "bopts": shq(" ".join(o for o, _, _ in bopts))}


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def zsh_item(o, desc):
    return shq("%s:%s" % (o.replace(":", "\\:"), desc.replace(":", "\\:")))


def zsh(args):
    model, bopts = completion_model(args)
    lines = ["#compdef hocus-blk blockd",
             "# zsh completion for hocus-blk and blockd. Generated by docs/man/helpdoc.py",
             "# from the programs' option tables: do not edit.",
             "",
             "_hocus-blk() {",
             "        local -a cmds opts verbs",
             "        if [[ $service == blockd ]]; then",
             "                opts=(%s)" % " ".join(zsh_item(o, d) for o, _, d in bopts),
             "                if [[ $PREFIX == -* ]]; then _describe -t options option opts; else _files; fi",
             "                return",
             "        fi",
             "        cmds=(%s)" % " ".join(zsh_item(n, s) for n, s, _, _ in model),
             "        if (( CURRENT == 2 )); then",
             "                _describe -t commands command cmds",
             "                return",
             "        fi",
             "        case $words[2] in"]
    for name, _, opts, verbs in model:
        lines.append("        %s) opts=(%s); verbs=(%s) ;;" % (name, " ".join(zsh_item(o, d) for o, _, d in opts),
                                                             " ".join(shq(v) for v in verbs)))
    lines += ["        *) return 1 ;;",
              "        esac",
              "        if [[ $PREFIX == -* ]]; then",
              "                _describe -t options option opts",
              "        elif (( CURRENT == 3 && ${#verbs} )); then",
              "                compadd -a verbs",
              "        else",
              "                _files",
              "        fi",
              "}",
              "",
              '_hocus-blk "$@"', ""]
    return "\n".join(lines)


def check(args):
    bad = []
    hb = args.hocus_blk
    page = open(args.man).read() if args.man else ""
    for name, _ in commands(hb):
        text = run([hb, name, "--help"])
        doc = help_options(text)
        longs, shorts = parser_options(hb, name)
        for n in longs:
            if n not in doc:
                bad.append("hocus-blk %s: --%s is accepted but not in --help" % (name, n))
        for n in doc:
            if n not in longs:
                bad.append("hocus-blk %s: --help lists --%s, which the parser refuses" % (name, n))
            elif bool(doc[n][1]) != longs[n]:
                bad.append("hocus-blk %s: --%s %s an argument, --help says otherwise" %
                           (name, n, "takes" if longs[n] else "takes no"))
        for s in shorts:
            if not any(d[0] == s for d in doc.values()):
                bad.append("hocus-blk %s: -%s is accepted but not in --help" % (name, s))
        if page:
            for n in doc:
                if "\\-\\-" + esc(n) not in page:
                    bad.append("hocus-blk(1): no --%s (hocus-blk %s)" % (n, name))
    if args.blockd and args.blockd_man:
        page = open(args.blockd_man).read()
        for n in help_options(run([args.blockd, "--help"])):
            if "\\-\\-" + esc(n) not in page:
                bad.append("blockd(8): no --%s" % n)
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["man-hocus-blk", "man-blockd", "format", "bash", "zsh", "check"])
    ap.add_argument("--hocus-blk")
    ap.add_argument("--blockd")
    ap.add_argument("--template")
    ap.add_argument("--markdown")
    ap.add_argument("--version", default="")
    ap.add_argument("--man", help="check: hocus-blk(1) to look for every option in")
    ap.add_argument("--blockd-man", help="check: blockd(8)")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    if args.what == "check":
        return check(args)
    text = {"man-hocus-blk": man_hocus_blk, "man-blockd": man_blockd, "format": man_format,
            "bash": bash, "zsh": zsh}[args.what](args)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
