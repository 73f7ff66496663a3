# compleat tenant-tiny: flatten the block YAML of a NoCloud network-config (the cloud stack's
# render_yaml: two-space indents, block maps and "- " lists, JSON-quoted scalars) into
# "path=value" lines, list items numbered from 0:
#   ethernets.eth0.match.macaddress=52:54:00:aa:bb:cc
#   ethernets.eth0.addresses.0=10.200.0.5/24
#   ethernets.eth0.routes.0.via=10.200.0.1
# Empty containers ({} / []) and comments produce nothing. busybox awk (POSIX awk) compatible.
function unquote(s,    out, i, c) {
  if (s !~ /^".*"$/) return s
  s = substr(s, 2, length(s) - 2)
  out = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "\\" && i < length(s)) {
      i++; c = substr(s, i, 1)
      if (c == "n") c = "\n"; else if (c == "t") c = "\t"
    }
    out = out c
  }
  return out
}
function prefix(    p, i) {
  p = ""
  for (i = 1; i <= depth; i++) p = p (p == "" ? "" : ".") name[i]
  return p
}
function push(ind, n) { depth++; indent[depth] = ind; name[depth] = n }
# one "key: value", "key:" or scalar at indentation ind
function entry(text, ind,    key, val, p, rest) {
  while (text ~ /^- /) {                       # a list item (possibly a list in a list)
    p = prefix()
    idx = (p in count) ? count[p] : 0
    count[p] = idx + 1
    push(ind, idx)
    text = substr(text, 3); ind += 2
  }
  if (text ~ /^"/) {                           # JSON-quoted key
    if (match(text, /^"([^"\\]|\\.)*"[ ]*:/)) {
      rest = substr(text, RLENGTH + 1)
      key = substr(text, 1, RLENGTH - 1); sub(/[ ]+$/, "", key); key = unquote(key)
    } else { emit(prefix(), unquote(text)); return }
  } else if (match(text, /^[^ :]+:( |$)/)) {   # plain key
    key = substr(text, 1, RLENGTH); sub(/:[ ]?$/, "", key)
    rest = substr(text, RLENGTH + 1)
  } else { emit(prefix(), unquote(text)); return }
  sub(/^[ ]+/, "", rest)
  if (rest == "") { push(ind, key); return }  # a nested block follows
  if (rest == "{}" || rest == "[]") return
  p = prefix(); emit((p == "" ? "" : p ".") key, unquote(rest))
}
function emit(k, v) { if (k != "") print k "=" v }
{
  sub(/\r$/, "")
  if ($0 ~ /^[ ]*(#|$)/) next
  match($0, /^ */); ind = RLENGTH
  text = substr($0, ind + 1); sub(/[ ]+$/, "", text)
  while (depth > 0 && indent[depth] >= ind) depth--
  entry(text, ind)
}
