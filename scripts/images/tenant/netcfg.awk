# compleat tenant-tiny: flatten a JSON document (the cloud stack writes its NoCloud meta-data and
# network-config as JSON, which is YAML too) into "path=value" lines, list items numbered from 0:
#   ethernets.eth0.match.macaddress=52:54:00:aa:bb:cc
#   ethernets.eth0.addresses.0=10.200.0.5/24
#   ethernets.eth0.routes.0.via=10.200.0.1
# Strings are unquoted (\" \\ \/ \n \t \r and \u00XX escapes), numbers and true/false/null are
# printed as written, empty containers produce nothing, and text before the first "{" or "["
# (a "#cloud-config" line) is skipped. busybox awk (POSIX awk) compatible.
function hexval(h,    i, v) {
  v = 0
  for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
  return v
}
# the JSON string starting at position pos (its opening quote): sets END_AT past the closing quote
function jstring(pos,    out, c, e) {
  out = ""
  pos++
  while (pos <= n) {
    c = substr(doc, pos, 1)
    if (c == "\"") { END_AT = pos + 1; return out }
    if (c == "\\") {
      pos++; e = substr(doc, pos, 1)
      if (e == "n") c = "\n"
      else if (e == "t") c = "\t"
      else if (e == "r") c = "\r"
      else if (e == "u") { c = sprintf("%c", hexval(substr(doc, pos + 1, 4))); pos += 4 }
      else c = e
    }
    out = out c
    pos++
  }
  bad("unterminated string")
}
function bad(why) { printf "netcfg.awk: %s at byte %d\n", why, pos > "/dev/stderr"; exit 1 }
# the path of the next value: the pending key in an object, the next index in a list
function child(    p, k) {
  if (depth == 0) return ""
  if (kind[depth] == "a") { k = count[depth]; count[depth]++ } else k = key
  p = path[depth]
  return p == "" ? k : p "." k
}
function open(type,    p) { p = child(); depth++; kind[depth] = type; path[depth] = p; count[depth] = 0; want_key = (type == "o") }
{ doc = doc $0 "\n" }
END {
  n = length(doc)
  pos = 1
  while (pos <= n && substr(doc, pos, 1) != "{" && substr(doc, pos, 1) != "[") pos++
  depth = 0
  while (pos <= n) {
    c = substr(doc, pos, 1)
    if (c ~ /[ \t\r\n,:]/) { pos++; continue }
    if (c == "{" || c == "[") { open(c == "{" ? "o" : "a"); pos++; continue }
    if (c == "}" || c == "]") {
      if (depth == 0) bad("unbalanced " c)
      depth--; want_key = (kind[depth] == "o"); pos++
      if (depth == 0) {
        if (substr(doc, pos) ~ /[^ \t\r\n]/) bad("text after the document")
        exit 0
      }
      continue
    }
    if (depth == 0) bad("value outside a document")
    if (c == "\"") {
      s = jstring(pos); pos = END_AT
      if (kind[depth] == "o" && want_key) { key = s; want_key = 0; continue }
      print child() "=" s
    } else if (match(substr(doc, pos), /^(true|false|null|-?[0-9][0-9.eE+-]*)/)) {
      print child() "=" substr(doc, pos, RLENGTH)
      pos += RLENGTH
    } else bad("unexpected " c)
    if (kind[depth] == "o") want_key = 1
  }
  if (depth != 0) bad("unterminated document")
}
