#!/bin/sh
# SPDX-License-Identifier: MIT
# cxrtrack.1, the man page, made from the text the CLI itself prints
# (`cxrtrack help` and `cxrtrack help COMMAND`: the commands' options,
# their examples and notes), so the page and --help cannot disagree.
# meson builds it beside the binary and installs it.
#   tools/make-man.sh CXRTRACK OUT.1
set -eu
X=$1 OUT=$2
# roff: a backslash is written \e, a line must not start with . or '
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
ver=$("$X" --version | cut -d' ' -f2)
{
  echo ".TH CXRTRACK 1 \"\" \"cxrtrack $ver\" \"User Commands\""
  echo ".SH NAME"
  echo "cxrtrack \\- follow a patient's chest X-rays over time"
  echo ".SH SYNOPSIS"
  echo ".B cxrtrack"
  echo ".I COMMAND"
  printf '%s\n' '[\fIOPTION\fR]...'
  echo ".SH DESCRIPTION"
  echo "An SQLite store of every film per patient in visit order, registration, lung fields,"
  echo "a classifier, Brixia severity, difference maps, progression flags and change reports."
  echo "A measure to support a radiologist's read, not a diagnosis."
  echo ".SH COMMANDS"
  echo ".nf"
  "$X" help | sed -n '/^Usage:/,/^$/p' | sed '1d' | roff
  echo ".fi"
  for c in $("$X" help | sed -n 's/^  cxrtrack \([a-z]*\) .*/\1/p'); do
    echo ".SS $c"
    echo ".nf"
    "$X" help "$c" | roff
    echo ".fi"
  done
  echo ".SH FILES"
  echo "The default models: share/cxrtrack/models under the install prefix, with their cards."
  echo ".SH SEE ALSO"
  echo "The README and docs of the source tree; sqlite3(1) with .load cxrsql for the SQL functions."
} > "$OUT"
