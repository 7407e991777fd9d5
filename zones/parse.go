package zones

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// MaxFileSize is the largest zone file Parse accepts, in bytes.
const MaxFileSize = 64 << 20

// DefaultTTL is the TTL of records that have none, in a file without a $TTL
// line before them (RFC 1035 otherwise carries the last TTL forward).
const DefaultTTL = 3600

// MaxExtra caps the A and AAAA records kept for the additional section of
// one RRset (glue included); more would not fit a response anyway.
const MaxExtra = 64

// maxErrors caps the problems reported for one file.
const maxErrors = 20

// Options control loading.
type Options struct {
	// Reserved lists canonical FQDNs (e.g. "service.disco.internal.") at or
	// under which no zone may define names; a file that does is refused with
	// an error naming file:line.
	Reserved []string
}

// Error is one problem in a zone file. Its text is "file:line: message", or
// "file: message" when the problem is not on one line (the file could not
// be read).
type Error struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Parse reads a zone from r and validates it. The zone's origin is origin
// unless the file sets one with $ORIGIN before its first record; origin ""
// means the file must set it. file names the source in errors.
//
// The error, if any, lists every problem found, one "file:line: message"
// per line; each is an *Error (errors.As finds the first).
//
// Loading refuses a zone without exactly one SOA (at the apex) or without
// apex NS records, data outside the zone or under opts.Reserved, a CNAME
// beside other data, data other than glue below a delegation, in-zone name
// servers without addresses, wildcard NS, DNAME, and classes other than IN.
// It lower-cases owner names, drops duplicate records and gives each RRset
// the lowest TTL among its records (RFC 2181).
//
// $INCLUDE is not supported: a zone is exactly one file, so that a reload
// or "disco zone check" sees everything that will be served. $GENERATE is,
// with a TTL written in its template (the parser does not apply $TTL to it).
func Parse(r io.Reader, origin, file string, opts Options) (*Zone, error) {
	z, errs := parse(r, origin, file, opts)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return z, nil
}

// ParseFile reads and validates the zone file at path. Its origin is set by
// an $ORIGIN line before the first record or else is the file name without
// ".zone" (example.com.zone holds example.com.).
func ParseFile(path string, opts Options) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read: " + pathErrText(err)}
	}
	defer f.Close()
	return Parse(f, OriginFromFileName(path), path, opts)
}

// OriginFromFileName returns the origin a zone file's name implies:
// "dir/example.com.zone" gives "example.com.". It returns "" when the name
// is not a domain name.
func OriginFromFileName(path string) string {
	name := strings.TrimSuffix(filepath.Base(path), ".zone")
	if name == "" || name == "." {
		return ""
	}
	name = dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return ""
	}
	return name
}

func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func joinErrors(errs []*Error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// entry is one parsed record and the line it starts on.
type entry struct {
	rr   dns.RR
	line int
}

// owner collects the records of one name while a zone is built.
type owner struct {
	name   string
	types  []uint16 // in the order first seen
	byType map[uint16][]entry
}

func (o *owner) has(t uint16) bool { return len(o.byType[t]) > 0 }

// line returns the line of the name's first record of type t.
func (o *owner) line(t uint16) int { return o.byType[t][0].line }

// builder validates parsed records and builds a Zone from them.
type builder struct {
	file     string
	origin   string
	reserved []string // canonical
	errs     []*Error
	owners   map[string]*owner
	order    []*owner // in the order first seen
	// accepted holds the records that passed add, in file order.
	accepted []entry
	soaLine  int
	seen     map[string][]dns.RR  // see duplicate
	pack     [dns.MaxMsgSize]byte // scratch space for checkRdata
}

func (b *builder) errorf(line int, format string, args ...any) {
	b.errs = append(b.errs, &Error{File: b.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func parse(r io.Reader, origin, file string, opts Options) (*Zone, []*Error) {
	src, rerr := readSource(r, file, MaxFileSize)
	if rerr != nil {
		return nil, []*Error{rerr}
	}
	if origin != "" {
		origin = dns.CanonicalName(origin)
		if _, ok := dns.IsDomainName(origin); !ok {
			return nil, []*Error{{File: file, Line: 1, Msg: fmt.Sprintf("invalid origin %q", origin)}}
		}
	}
	zoneOrigin, originLine := leadingOrigin(src, origin)
	if zoneOrigin == "" {
		return nil, []*Error{{File: file, Line: 1,
			Msg: `no zone origin: put an absolute $ORIGIN line (like "$ORIGIN example.com.") before the first record`}}
	}
	reserved := make([]string, len(opts.Reserved))
	for i, r := range opts.Reserved {
		reserved[i] = dns.CanonicalName(r)
	}
	for _, r := range reserved {
		if dns.IsSubDomain(r, zoneOrigin) {
			return nil, []*Error{{File: file, Line: max(originLine, 1),
				Msg: fmt.Sprintf("zone %s is at or under %s, which is reserved for discovery names", zoneOrigin, r)}}
		}
	}

	br := &byteReader{b: src}
	zp := dns.NewZoneParser(br, origin, file)
	zp.SetDefaultTTL(DefaultTTL)
	b := &builder{file: file, origin: zoneOrigin, reserved: reserved, owners: map[string]*owner{}, seen: map[string][]dns.RR{}}
	lt := lineTracker{src: src, line: 1, last: 1}
	var ents []entry
	generateChecked := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		line := lt.advance(br.off)
		ents = append(ents, entry{rr: rr, line: line})
		if lt.generated != nil && generateChecked != line {
			// The parser gives $GENERATE records its own default TTL, not
			// $TTL's: insist on an explicit one rather than surprise.
			generateChecked = line
			if !generateHasTTL(lt.generated) {
				b.errorf(line, "$GENERATE needs a TTL in its template (like \"$GENERATE 1-9 host$ 300 A 192.0.2.$\"); $TTL does not apply to it")
			}
		}
	}
	if err := zp.Err(); err != nil {
		lt.advance(br.off)
		return nil, []*Error{parseError(file, err, lt.line)}
	}

	b.add(ents)
	b.check()
	if len(b.errs) > 0 {
		return nil, b.sortedErrors()
	}
	return b.build(), nil
}

// readSource reads all of r, refusing more than limit bytes.
func readSource(r io.Reader, file string, limit int64) ([]byte, *Error) {
	src, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &Error{File: file, Msg: "cannot read: " + pathErrText(err)}
	}
	if int64(len(src)) > limit {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d bytes", limit)}
	}
	return src, nil
}

func (b *builder) sortedErrors() []*Error {
	slices.SortStableFunc(b.errs, func(x, y *Error) int { return x.Line - y.Line })
	if len(b.errs) > maxErrors {
		more := len(b.errs) - maxErrors
		b.errs = append(b.errs[:maxErrors:maxErrors], &Error{File: b.file, Line: b.errs[maxErrors].Line,
			Msg: fmt.Sprintf("too many problems; %d more not shown", more)})
	}
	return b.errs
}

// add checks each record on its own and files the good ones by owner.
func (b *builder) add(ents []entry) {
	for _, e := range ents {
		h := e.rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		name := h.Name
		switch {
		case h.Class != dns.ClassINET:
			b.errorf(e.line, "%s: class %s is not supported, only IN", name, dns.Class(h.Class))
			continue
		case !dns.IsSubDomain(b.origin, name):
			b.errorf(e.line, "%s is outside the zone %s", name, b.origin)
			continue
		case h.Rrtype == dns.TypeDNAME:
			b.errorf(e.line, "%s: DNAME records are not supported", name)
			continue
		case h.Rrtype == dns.TypeOPT || h.Rrtype == dns.TypeTSIG || h.Rrtype == dns.TypeTKEY:
			b.errorf(e.line, "%s: %s records cannot appear in a zone file", name, dns.Type(h.Rrtype))
			continue
		}
		if msg := checkRdata(e.rr, b.pack[:]); msg != "" {
			b.errorf(e.line, "%s %s %s", name, dns.Type(h.Rrtype), msg)
			continue
		}
		if r := b.reservedBy(name); r != "" {
			b.errorf(e.line, "%s is at or under %s, which is reserved for discovery names; zone files may not define names there", name, r)
			continue
		}
		o := b.owners[name]
		if o == nil {
			o = &owner{name: name, byType: make(map[uint16][]entry)}
			b.owners[name] = o
			b.order = append(b.order, o)
		}
		t := h.Rrtype
		set := o.byType[t]
		if len(set) == 0 {
			o.types = append(o.types, t)
		}
		if b.duplicate(e.rr) {
			continue // RFC 2181: an RRset holds no duplicates
		}
		o.byType[t] = append(set, e)
		b.accepted = append(b.accepted, e)
	}
}

// checkRdata returns what is wrong with rr's data, or "": it must encode,
// and only APL records may be empty (the parser accepts "www IN A" with no
// address, which is meant for dynamic updates).
func checkRdata(rr dns.RR, buf []byte) string {
	if _, err := dns.PackRR(rr, buf, 0, nil, false); err != nil {
		return "cannot be encoded: " + strings.TrimPrefix(err.Error(), "dns: ")
	}
	if rr.Header().Rdlength == 0 && rr.Header().Rrtype != dns.TypeAPL {
		return "has no data"
	}
	return ""
}

// duplicate reports whether a record equal to rr was added before. Records
// are bucketed by owner, type and lower-cased data, so that large RRsets
// load in linear time; dns.IsDuplicate decides within a bucket.
func (b *builder) duplicate(rr dns.RR) bool {
	data := rr.String()
	if hdr := rr.Header().String(); strings.HasPrefix(data, hdr) {
		data = data[len(hdr):] // without the TTL, which duplicates may differ in
	}
	key := rr.Header().Name + " " + strconv.Itoa(int(rr.Header().Rrtype)) + " " + strings.ToLower(data)
	for _, x := range b.seen[key] {
		if dns.IsDuplicate(x, rr) {
			return true
		}
	}
	b.seen[key] = append(b.seen[key], rr)
	return false
}

// reservedBy returns the reserved name that name is at or under, or "".
func (b *builder) reservedBy(name string) string {
	for _, r := range b.reserved {
		if dns.IsSubDomain(r, name) {
			return r
		}
	}
	return ""
}

// check applies the rules that concern several records: one SOA at the
// apex, NS at the apex, CNAME alone, nothing but glue below a delegation,
// glue for in-zone name servers.
func (b *builder) check() {
	var soa *entry
	for i := range b.accepted {
		e := &b.accepted[i]
		if e.rr.Header().Rrtype != dns.TypeSOA {
			continue
		}
		switch {
		case e.rr.Header().Name != b.origin:
			b.errorf(e.line, "SOA record for %s is not at the zone apex %s", e.rr.Header().Name, b.origin)
		case soa != nil:
			b.errorf(e.line, "second SOA record for %s (the first is on line %d); a zone has exactly one", b.origin, soa.line)
		default:
			soa = e
		}
	}
	if soa == nil {
		line := 1
		if len(b.accepted) > 0 {
			line = b.accepted[0].line
		}
		b.errorf(line, "no SOA record at the apex %s; a zone needs exactly one", b.origin)
	} else {
		b.soaLine = soa.line
	}
	apex := b.owners[b.origin]
	if soa != nil && (apex == nil || !apex.has(dns.TypeNS)) {
		b.errorf(soa.line, "no NS records at the apex %s; a zone needs at least one", b.origin)
	}

	for _, o := range b.order {
		if o.name != b.origin && o.has(dns.TypeNS) && isWildcard(o.name) {
			b.errorf(o.line(dns.TypeNS), "%s: a wildcard name cannot have NS records", o.name)
		}
	}
	for _, o := range b.order {
		if cut := b.cutAbove(o.name); cut != nil {
			for _, t := range o.types {
				if t != dns.TypeA && t != dns.TypeAAAA {
					b.errorf(o.line(t), "%s %s is below the delegation %s (line %d); only glue A and AAAA records may be there",
						o.name, dns.Type(t), cut.name, cut.line(dns.TypeNS))
				}
			}
			continue
		}
		if b.isCut(o) {
			for _, t := range o.types {
				if t != dns.TypeNS && t != dns.TypeDS && t != dns.TypeRRSIG && t != dns.TypeNSEC {
					b.errorf(o.line(t), "%s %s is at the delegation point %s (line %d); only NS and DS records belong there",
						o.name, dns.Type(t), o.name, o.line(dns.TypeNS))
				}
			}
			continue
		}
		if !o.has(dns.TypeCNAME) {
			continue
		}
		cn := o.byType[dns.TypeCNAME]
		if len(cn) > 1 {
			b.errorf(cn[1].line, "%s has more than one CNAME (the first is on line %d)", o.name, cn[0].line)
		}
		for _, t := range o.types {
			if t != dns.TypeCNAME && t != dns.TypeRRSIG && t != dns.TypeNSEC {
				b.errorf(cn[0].line, "%s has a CNAME and other data (%s on line %d); a CNAME must be alone at its name",
					o.name, dns.Type(t), o.line(t))
				break
			}
		}
	}

	for _, o := range b.order {
		if o.name != b.origin && !b.isCut(o) {
			continue
		}
		for _, e := range o.byType[dns.TypeNS] {
			target := dns.CanonicalName(e.rr.(*dns.NS).Ns)
			if !dns.IsSubDomain(b.origin, target) {
				continue
			}
			t := b.owners[target]
			switch {
			case t != nil && t.has(dns.TypeCNAME):
				b.errorf(e.line, "name server %s of %s is an alias (CNAME on line %d); NS must name a host with addresses",
					target, o.name, t.line(dns.TypeCNAME))
			case t == nil || !t.has(dns.TypeA) && !t.has(dns.TypeAAAA):
				b.errorf(e.line, "name server %s of %s is inside the zone but has no A or AAAA record (glue)", target, o.name)
			}
		}
	}
}

// isCut reports whether o is a delegation point: a name below the apex
// with NS records (wildcards cannot be).
func (b *builder) isCut(o *owner) bool {
	return o.name != b.origin && o.has(dns.TypeNS) && !isWildcard(o.name)
}

// cutAbove returns the highest delegation point strictly above name, if any.
func (b *builder) cutAbove(name string) *owner {
	var cut *owner
	for p := parent(name); p != "" && p != b.origin; p = parent(p) {
		if o := b.owners[p]; o != nil && b.isCut(o) {
			cut = o
		}
	}
	return cut
}

// build turns the validated records into a Zone.
func (b *builder) build() *Zone {
	z := &Zone{
		origin:  b.origin,
		file:    b.file,
		soaLine: b.soaLine,
		labels:  dns.CountLabel(b.origin),
		nodes:   make(map[string]*node, len(b.owners)),
	}
	for _, o := range b.order {
		n := z.ensure(o.name)
		n.sets = make([]rrset, 0, len(o.types))
		for _, t := range o.types {
			set := o.byType[t]
			rrs := make([]dns.RR, len(set))
			ttl := set[0].rr.Header().Ttl
			for i, e := range set {
				rrs[i] = e.rr
				ttl = min(ttl, e.rr.Header().Ttl)
			}
			for _, rr := range rrs {
				rr.Header().Ttl = ttl // RFC 2181: one TTL per RRset
			}
			n.sets = append(n.sets, rrset{rrtype: t, rrs: rrs})
			z.records += len(rrs)
		}
		if c := o.byType[dns.TypeCNAME]; len(c) > 0 {
			n.cname = c[0].rr.(*dns.CNAME)
			n.target = dns.CanonicalName(n.cname.Target)
		}
		n.cut = b.isCut(o)
	}
	z.apex = z.nodes[z.origin]
	for _, n := range z.nodes {
		if isWildcard(n.name) {
			if p := z.nodes[parent(n.name)]; p != nil {
				p.wild = n
			}
		}
		for i := range n.sets {
			s := &n.sets[i]
			var done map[string]bool
			for _, rr := range s.rrs {
				name := additionalName(rr)
				if len(s.extra) >= MaxExtra || name == "" || done[name] {
					continue
				}
				if done == nil {
					done = map[string]bool{}
				}
				done[name] = true
				s.extra = z.addresses(s.extra, name)
			}
			if len(s.extra) > MaxExtra {
				s.extra = s.extra[:MaxExtra:MaxExtra]
			}
		}
		if n.cut {
			n.glue = n.set(dns.TypeNS).extra
		}
	}
	z.soa = z.apex.set(dns.TypeSOA).rrs[0].(*dns.SOA)
	z.negSOA = dns.Copy(z.soa).(*dns.SOA)
	z.negSOA.Hdr.Ttl = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	z.ns = z.apex.set(dns.TypeNS).rrs
	return z
}

// ensure returns the node for name, creating it and every missing name
// between it and the apex (empty non-terminals).
func (z *Zone) ensure(name string) *node {
	n := z.nodes[name]
	if n != nil {
		return n
	}
	n = &node{name: name}
	z.nodes[name] = n
	for p := name; p != z.origin && p != ""; {
		p = parent(p)
		if p == "" || z.nodes[p] != nil {
			break
		}
		z.nodes[p] = &node{name: p}
	}
	return n
}

// addresses appends the A and AAAA records this zone holds for name.
func (z *Zone) addresses(dst []dns.RR, name string) []dns.RR {
	if name == "" {
		return dst
	}
	n := z.nodes[name]
	if n == nil {
		return dst
	}
	for _, t := range [...]uint16{dns.TypeA, dns.TypeAAAA} {
		if s := n.set(t); s != nil {
			dst = append(dst, s.rrs...)
		}
	}
	return dst
}

// additionalName returns the canonical name whose addresses belong in the
// additional section of an answer holding rr, or "".
func additionalName(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.MX:
		return dns.CanonicalName(rr.Mx)
	case *dns.SRV:
		if rr.Target == "." {
			return ""
		}
		return dns.CanonicalName(rr.Target)
	case *dns.NS:
		return dns.CanonicalName(rr.Ns)
	}
	return ""
}

// parent returns the name one label up, or "" for the root.
func parent(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end {
		if name == "." {
			return ""
		}
		return "."
	}
	return name[off:]
}

func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// leadingOrigin returns the origin in effect at the first record of src:
// the last $ORIGIN before any record, made absolute against origin, or
// origin itself; and the line of that $ORIGIN (0 for none). It returns ""
// when no origin can be known.
func leadingOrigin(src []byte, origin string) (string, int) {
	at := 0
	for n := 1; len(src) > 0; n++ {
		var line []byte
		line, src, _ = bytes.Cut(src, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 || f[0][0] == ';' {
			continue
		}
		if f[0][0] != '$' {
			break
		}
		if !strings.EqualFold(string(f[0]), "$ORIGIN") || len(f) < 2 || f[1][0] == ';' {
			continue
		}
		name := string(f[1])
		switch {
		case dns.IsFqdn(name):
			origin = dns.CanonicalName(name)
		case origin == ".":
			origin = dns.CanonicalName(name + ".")
		case origin != "":
			origin = dns.CanonicalName(name + "." + origin)
		default:
			return "", n
		}
		if _, ok := dns.IsDomainName(origin); !ok {
			return "", n
		}
		at = n
	}
	return origin, at
}

// generateHasTTL reports whether a $GENERATE line's template has a TTL:
// "$GENERATE range lhs [ttl] [class] type rhs" or with class and TTL the
// other way round; of these fields only a TTL starts with a digit.
func generateHasTTL(line []byte) bool {
	f := bytes.Fields(line)
	if len(f) == 0 || !strings.EqualFold(string(f[0]), "$GENERATE") {
		return true
	}
	isTTL := func(i int) bool { return i < len(f) && f[i][0] >= '0' && f[i][0] <= '9' }
	if len(f) > 3 {
		if _, class := dns.StringToClass[strings.ToUpper(string(f[3]))]; class {
			return isTTL(4)
		}
	}
	return isTTL(3)
}

// parseError turns the parser's error into an Error on the line it names.
// miekg/dns's *dns.ParseError keeps its message, token and line in
// unexported fields and gives them only as text ("file: dns: msg: "token"
// at line: L:C"), so the line and token are read back from that text.
func parseError(file string, err error, fallbackLine int) *Error {
	msg := err.Error()
	var pe *dns.ParseError
	if errors.As(err, &pe) {
		msg = pe.Error()
	}
	msg = strings.TrimPrefix(msg, file+": ")
	msg = strings.TrimPrefix(msg, "dns: ")
	line := fallbackLine
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		pos := msg[i+len(" at line: "):]
		msg = msg[:i]
		l, _, _ := strings.Cut(pos, ":")
		if n, err := strconv.Atoi(l); err == nil && n > 0 {
			line = n
		}
	}
	text, token := msg, ""
	if i := strings.LastIndex(msg, `: "`); i >= 0 && strings.HasSuffix(msg, `"`) {
		text, token = msg[:i], msg[i+2:]
	}
	if t, err := strconv.Unquote(token); err == nil {
		switch t {
		case "unbalanced brace":
			return &Error{File: file, Line: line, Msg: "unbalanced parentheses: a '(' is not closed"}
		case "extra closing brace":
			return &Error{File: file, Line: line, Msg: "unbalanced parentheses: a ')' has no '('"}
		case text, "", " ", "\n":
			token = ""
		}
	}
	text = friendlyParseText(text)
	if token != "" {
		text += " " + token
	}
	return &Error{File: file, Line: line, Msg: text}
}

// friendlyParseText rewords the parser's terser messages.
func friendlyParseText(s string) string {
	switch s {
	case "$INCLUDE directive not allowed":
		return "$INCLUDE is not supported (put the records in the zone file itself):"
	case "bad A A":
		return "invalid A record: not an IPv4 address"
	case "bad AAAA AAAA":
		return "invalid AAAA record: not an IPv6 address"
	case "not a TTL":
		return "not a TTL, class or known record type:"
	}
	if rest, ok := strings.CutPrefix(s, "bad "); ok {
		if typ, field, ok := strings.Cut(rest, " "); ok {
			if _, known := dns.StringToType[typ]; known {
				return fmt.Sprintf("invalid %s record: bad %s", typ, field)
			}
		}
	}
	return s
}

// byteReader hands the parser one byte at a time (it uses io.ByteReader
// when it can), so the offset shows how far the parser has read: up to and
// including the newline that ends each record.
type byteReader struct {
	b   []byte
	off int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *byteReader) ReadByte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	r.off++
	return r.b[r.off-1], nil
}

// lineTracker finds the line each record starts on from how far the parser
// has read: the first line after the previous record that is not blank, a
// comment or a directive. Records from $GENERATE get the directive's line.
type lineTracker struct {
	src  []byte
	off  int // bytes accounted for
	line int // line number at off
	last int // line of the previous record
	// generated is the $GENERATE line the previous record came from, or nil.
	generated []byte
}

func (t *lineTracker) advance(end int) int {
	seg := t.src[t.off:end]
	start, dir := 0, 0
	var dirText []byte
	for len(seg) > 0 {
		l, rest, nl := bytes.Cut(seg, []byte{'\n'})
		if start == 0 {
			l = bytes.TrimSpace(l)
			switch {
			case len(l) == 0 || l[0] == ';':
			case l[0] == '$':
				dir, dirText = t.line, l
			default:
				start = t.line
			}
		}
		if nl {
			t.line++
		}
		seg = rest
	}
	t.off = end
	switch {
	case start > 0:
		t.last, t.generated = start, nil
	case dir > 0:
		t.last, t.generated = dir, dirText
	}
	return t.last
}
