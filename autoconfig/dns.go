package autoconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"sealmail/mailauth"
)

// Record is one DNS record to publish, in zone-file terms.
type Record struct {
	Name  string // fully qualified, without the final dot
	Type  string // MX, TXT, SRV, CNAME
	Value string // as in a zone file; TXT values unquoted
	Why   string // one line for the administrator
}

// String formats the record as a zone-file line; TXT values are split into
// the 255-byte strings DNS allows.
func (r Record) String() string {
	v := r.Value
	if r.Type == "TXT" {
		v = mailauth.TXTStrings(v)
	}
	return fmt.Sprintf("%s.\t3600\tIN\t%s\t%s", r.Name, r.Type, v)
}

// MTASTSMode is the MTA-STS mode published: "testing" until the server has a
// certificate from a public CA, because senders check it against their roots
// and a locally issued certificate would make them refuse mail in "enforce".
func MTASTSMode(publicCA bool) string {
	if publicCA {
		return "enforce"
	}
	return "testing"
}

// MTASTSPolicy returns the policy file served at
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461).
func MTASTSPolicy(mx, mode string) string {
	return fmt.Sprintf("version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 604800\r\n", mode, mx)
}

// MTASTSID is the policy's id for the _mta-sts TXT record: it changes exactly
// when the policy does, as RFC 8461 asks.
func MTASTSID(policy string) string {
	sum := sha256.Sum256([]byte(policy))
	return hex.EncodeToString(sum[:])[:20]
}

// Records returns every record an agency publishes for domain served by s:
// mail routing and authentication (MX, SPF, DKIM, DMARC), client discovery
// (RFC 6186/8314 SRV, autoconfig and autodiscover names) and transport
// security (MTA-STS, TLS-RPT). dkim holds the domain's DKIM records.
func Records(domain string, s Server, dkim []Record, mtaSTSMode string) []Record {
	host := s.Host
	rs := []Record{
		{domain, "MX", "10 " + host + ".", "mail for the domain goes to this server"},
		{domain, "TXT", "v=spf1 mx -all", "SPF: only the domain's MX hosts send its mail"},
	}
	rs = append(rs, dkim...)
	rs = append(rs,
		Record{"_dmarc." + domain, "TXT", "v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@" + domain,
			"DMARC: receivers quarantine mail that fails SPF and DKIM; reports to postmaster"},
	)
	srv := func(service string, prio, port int, why string) {
		if port == 0 {
			rs = append(rs, Record{service + "._tcp." + domain, "SRV", "0 0 0 .", why + " (not offered)"})
			return
		}
		rs = append(rs, Record{service + "._tcp." + domain, "SRV", fmt.Sprintf("%d 1 %d %s.", prio, port, host), why})
	}
	// RFC 8314: implicit TLS preferred (lower priority value) over STARTTLS.
	srv("_imaps", 0, s.IMAPS, "IMAP over TLS (RFC 6186, 8314)")
	srv("_imap", 10, s.IMAP, "IMAP with STARTTLS")
	srv("_submissions", 0, s.Submissions, "mail submission over TLS")
	srv("_submission", 10, s.Submission, "mail submission with STARTTLS")
	srv("_pop3s", 0, 0, "POP3 over TLS")
	srv("_pop3", 0, 0, "POP3")
	rs = append(rs, Record{"_smtp._tls." + domain, "TXT", "v=TLSRPTv1; rua=mailto:postmaster@" + domain, "TLS reporting (RFC 8460): senders report failed TLS to postmaster"})
	if s.HTTPS == 0 {
		return rs // no web listener: nothing serves autoconfig or MTA-STS
	}
	// Thunderbird, Outlook and MTA-STS senders fetch https://NAME/ on 443.
	web := ""
	if s.HTTPS != 443 {
		web = fmt.Sprintf(" (clients use port 443: forward it to https-addr, port %d)", s.HTTPS)
	}
	policy := MTASTSPolicy(host, mtaSTSMode)
	rs = append(rs,
		Record{"autoconfig." + domain, "CNAME", host + ".", "Thunderbird finds its settings here" + web},
		Record{"autodiscover." + domain, "CNAME", host + ".", "Outlook finds its settings here" + web},
		Record{"_autodiscover._tcp." + domain, "SRV", fmt.Sprintf("0 1 %d %s.", s.HTTPS, host), "Outlook's fallback to find Autodiscover"},
		Record{"mta-sts." + domain, "CNAME", host + ".", "serves the MTA-STS policy over HTTPS" + web},
		Record{"_mta-sts." + domain, "TXT", "v=STSv1; id=" + MTASTSID(policy), "MTA-STS (RFC 8461), mode " + mtaSTSMode},
	)
	return rs
}
