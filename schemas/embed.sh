#!/bin/sh
# embed.sh NAME FILE: print FILE as a C string constant NAME, so schemas/
# stays the single source of truth and the binary needs no data files.
name=$1
file=$2
printf '/* generated from %s by schemas/embed.sh; do not edit */\n' "$file"
printf 'static const char %s[] =\n' "$name"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$file"
printf ';\n'
