#!/bin/sh
# fixture.sh zone|queries|instances [N] [DOMAIN]
# The benchmark's names, in disco's own shapes:
#   web-K.service.D          3 x A   (instances 10.hi.lo.1-3, port 8080)
#   _web-K._tcp.service.D    3 x SRV -> <hex-ip>.addr.D, with A glue
# zone:      the same names as a static zone, for Knot
# queries:   a dnsperf file, 45% A, 45% SRV, 10% NXDOMAIN (fixed seed)
# instances: "service id address port" lines for bench/regload
# flood:     a dnsperf file of N distinct names that exist nowhere (fixed
#            seed), half "r<hex>.service.D A", half "_r<hex>._tcp.service.D
#            SRV": a random-subdomain flood, NXDOMAIN at disco and at Knot
set -eu
MODE=$1 N=${2:-1000} D=${3:-disco.internal.}
exec awk -v mode="$MODE" -v n="$N" -v d="$D" 'BEGIN {
  if (mode == "flood") {
    srand(7)
    for (i = 0; i < n; i++) {
      label = sprintf("r%06x%04x%04x", i, int(rand() * 65536), int(rand() * 65536))
      if (i % 2 == 0) printf "%s.service.%s A\n", label, d
      else            printf "_%s._tcp.service.%s SRV\n", label, d
    }
    exit
  }
  if (mode == "zone") {
    printf "$ORIGIN %s\n$TTL 5\n", d
    printf "@ 5 IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 5\n", d, d
    printf "@ IN NS ns1.%s\nns1 IN A 127.0.0.1\n", d
  }
  for (k = 0; k < n; k++) {
    hi = int(k / 250); lo = k % 250 + 1
    for (j = 1; j <= 3; j++) {
      ip = sprintf("10.%d.%d.%d", hi, lo, j)
      hex = sprintf("%02x%02x%02x%02x", 10, hi, lo, j)
      if (mode == "zone") {
        printf "web-%d.service IN A %s\n", k, ip
        printf "_web-%d._tcp.service IN SRV 1 1 8080 %s.addr.%s\n", k, hex, d
        printf "%s.addr IN A %s\n", hex, ip
      } else if (mode == "instances") {
        printf "web-%d web-%d-%d %s 8080\n", k, k, j, ip
      }
    }
  }
  if (mode == "queries") {
    srand(42)
    for (i = 0; i < 100000; i++) {
      r = rand(); k = int(rand() * n)
      if (r < 0.45)      printf "web-%d.service.%s A\n", k, d
      else if (r < 0.90) printf "_web-%d._tcp.service.%s SRV\n", k, d
      else               printf "nx-%d.service.%s A\n", k, d
    }
  }
}'
