package keepalived

import "testing"

func TestFinding(t *testing.T) {
	at := Pos{File: "k.conf", Line: 7}
	for _, tc := range []struct {
		name          string
		f             Finding
		warn, comment string // warn "": not a warning
	}{
		{
			name:    "not converted",
			f:       Finding{Pos: at, Subject: "vrrp_instance VI", What: "use_vmac vrrp.7", Kind: NotConverted, Msg: "no virtual MAC", Note: "no virtual MAC"},
			warn:    "k.conf:7: vrrp_instance VI: use_vmac vrrp.7: not converted: no virtual MAC",
			comment: "not converted: use_vmac vrrp.7 (k.conf:7): no virtual MAC",
		},
		{
			name:    "top level",
			f:       Finding{Pos: at, What: "virtual_server 192.0.2.1 80", Kind: NotConverted, Msg: "no IPVS", Note: "no IPVS"},
			warn:    "k.conf:7: virtual_server 192.0.2.1 80: not converted: no IPVS",
			comment: "not converted: virtual_server 192.0.2.1 80 (k.conf:7): no IPVS",
		},
		{
			name:    "said otherwise in the warning",
			f:       Finding{Pos: at, Subject: "vrrp_instance VI", What: "brd 192.0.2.255", Said: "virtual_ipaddress 192.0.2.7/24: brd 192.0.2.255", Kind: NotConverted, Msg: "prefix length only", Note: "prefix length only"},
			warn:    "k.conf:7: vrrp_instance VI: virtual_ipaddress 192.0.2.7/24: brd 192.0.2.255: not converted: prefix length only",
			comment: "not converted: brd 192.0.2.255 (k.conf:7): prefix length only",
		},
		{
			name:    "not converted, no note",
			f:       Finding{Pos: at, Subject: "vrrp_instance VI", What: "min_ttl 250", Kind: NotConverted, Msg: "TTL 255"},
			warn:    "k.conf:7: vrrp_instance VI: min_ttl 250: not converted: TTL 255",
			comment: "not converted: min_ttl 250 (k.conf:7)",
		},
		{
			name:    "changed, with its own punctuation",
			f:       Finding{Pos: at, Subject: "vrrp_script chk", What: "timeout 5s", Msg: " is too long: converted as 1s", Note: "; vipd needs it shorter"},
			warn:    "k.conf:7: vrrp_script chk: timeout 5s is too long: converted as 1s",
			comment: "keepalived: timeout 5s (k.conf:7); vipd needs it shorter",
		},
		{
			name:    "a remark on a field",
			f:       Finding{Pos: at, Subject: "vrrp_instance VI", Said: "auth_hmac", Msg: "key files must be private", Note: "key files: mode 0600"},
			warn:    "k.conf:7: vrrp_instance VI: auth_hmac: key files must be private",
			comment: "key files: mode 0600",
		},
		{
			name:    "same",
			f:       Finding{Pos: at, What: "accept", Kind: Same, Msg: "ignored", Note: "vipd always accepts"},
			comment: "keepalived: accept (k.conf:7): vipd always accepts",
		},
		{
			name: "own words",
			f:    Finding{Pos: at, Subject: "vrrp_script chk", Msg: "; starts with a semicolon"},
			warn: "k.conf:7: vrrp_script chk: ; starts with a semicolon",
		},
		{
			name: "escaped",
			f:    Finding{Pos: at, What: "script", Msg: "a\nb"},
			warn: `k.conf:7: script: a\nb`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.warns(); got != (tc.warn != "") {
				t.Errorf("warns() = %v", got)
			}
			if got := tc.f.String(); tc.warn != "" && got != tc.warn {
				t.Errorf("warning\n got %q\nwant %q", got, tc.warn)
			}
			if got := tc.f.Comment(); tc.comment != "" && got != tc.comment {
				t.Errorf("comment\n got %q\nwant %q", got, tc.comment)
			}
		})
	}
}

// TestKeywordRows checks that no keyword has both a row of its own and a
// reason, which its row would make dead: converting a keyword is one row
// in keywords.go, and its reason goes.
func TestKeywordRows(t *testing.T) {
	for _, tc := range []struct {
		block   string
		rows    func(string) bool
		reasons []map[string]string
	}{
		{"top level", func(k string) bool { return topKeywords[k] != nil }, []map[string]string{topReasons}},
		{"global_defs", func(k string) bool { return globalKeywords[k] != nil }, []map[string]string{globalReasons}},
		{"vrrp_instance", func(k string) bool { return instanceKeywords[k] != nil }, []map[string]string{instanceReasons, instanceSame}},
	} {
		for _, m := range tc.reasons {
			for k := range m {
				if tc.rows(k) {
					t.Errorf("%s: %s has a row and a reason", tc.block, k)
				}
			}
		}
	}
}
