# Groups `perf report --sort dso,symbol --stdio` lines into cost categories (bench/run).
# Input lines: "  9.26%  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore"
/^ *[0-9.]+%/ {
  p = $1; sub(/%/, "", p)
  line = $0
  if (line ~ /argon2/) c = "argon2"
  else if (line ~ /ecp_nistz256|p256|bignum|beeu_|bn_|ec_GFp|ecdsa|ECDSA/) c = "ECDSA P-256 (sign/verify)"
  else if (line ~ /sha256|sha512|hmac|HMAC|blake2/) c = "hashes (SHA-256, HMAC)"
  else if (line ~ /regex_lite|regex_automata|actix_router/) c = "routing (actix-router + regex-lite)"
  else if (line ~ /malloc|_int_free|cfree|realloc|free@|unlink_chunk|consolidate|tcache/) c = "malloc/free (glibc)"
  else if (line ~ /memmove|memcpy|memset|memcmp|strlen/) c = "memcpy/memset/memcmp"
  else if (line ~ /sled::|crossbeam_epoch/) c = "sled"
  else if (line ~ /serde_json|serde::|serde_core|ryu|itoa/) c = "serde_json"
  else if (line ~ /askama/) c = "templates (askama)"
  else if (line ~ /actix_http|actix_web|actix_server|actix_rt|h1::|httparse|http::/) c = "actix-web/http"
  else if (line ~ /tokio::|mio::|parking_lot/) c = "tokio/locks"
  else if (line ~ /\[k\]/) c = "kernel (network, scheduling, IO)"
  else if (line ~ /gatehouse::/) c = "gatehouse code"
  else if (line ~ /alloc::|core::fmt|core::str|hashbrown/) c = "Rust std (Vec clone, BTreeMap, format!)"
  else c = "other"
  sum[c] += p
  total += p
}
END {
  for (c in sum) printf "%7.1f%%  %s\n", sum[c], c | "sort -rn"
}
