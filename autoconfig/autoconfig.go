// Package autoconfig writes what mail clients and DNS need to find the server
// by themselves: Thunderbird's autoconfig file, Outlook's Autodiscover (POX)
// answer, an Apple configuration profile, the MTA-STS policy, and the DNS
// records an agency publishes. Staff then type only their address and password.
package autoconfig

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Server is how clients reach this server: its host name and the ports of the
// listeners that are on (0 when off).
type Server struct {
	Host        string
	IMAPS, IMAP int // implicit TLS (993), STARTTLS (143)
	Submissions int // implicit TLS (465)
	Submission  int // STARTTLS (587)
	HTTPS       int // this web listener (443)
}

// Thunderbird returns the clientConfig v1.1 document Thunderbird fetches from
// autoconfig.DOMAIN/mail/config-v1.1.xml or DOMAIN/.well-known/autoconfig/.
// Implicit TLS comes first: Thunderbird proposes the first server it can reach.
func Thunderbird(domain, displayName string, s Server) ([]byte, error) {
	type server struct {
		Type           string `xml:"type,attr"`
		Hostname       string `xml:"hostname"`
		Port           int    `xml:"port"`
		SocketType     string `xml:"socketType"`
		Authentication string `xml:"authentication"`
		Username       string `xml:"username"`
	}
	type provider struct {
		ID               string   `xml:"id,attr"`
		Domain           string   `xml:"domain"`
		DisplayName      string   `xml:"displayName"`
		DisplayShortName string   `xml:"displayShortName"`
		Incoming         []server `xml:"incomingServer"`
		Outgoing         []server `xml:"outgoingServer"`
	}
	type clientConfig struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Version  string   `xml:"version,attr"`
		Provider provider `xml:"emailProvider"`
	}
	srv := func(typ string, port int, socket string) server {
		return server{typ, s.Host, port, socket, "password-cleartext", "%EMAILADDRESS%"}
	}
	p := provider{ID: domain, Domain: domain, DisplayName: displayName, DisplayShortName: domain}
	if s.IMAPS != 0 {
		p.Incoming = append(p.Incoming, srv("imap", s.IMAPS, "SSL"))
	}
	if s.IMAP != 0 {
		p.Incoming = append(p.Incoming, srv("imap", s.IMAP, "STARTTLS"))
	}
	if s.Submissions != 0 {
		p.Outgoing = append(p.Outgoing, srv("smtp", s.Submissions, "SSL"))
	}
	if s.Submission != 0 {
		p.Outgoing = append(p.Outgoing, srv("smtp", s.Submission, "STARTTLS"))
	}
	if len(p.Incoming) == 0 || len(p.Outgoing) == 0 {
		return nil, errors.New("autoconfig: IMAP and submission listeners must be on")
	}
	return marshal(clientConfig{Version: "1.1", Provider: p})
}

// The Autodiscover (POX) namespaces Outlook uses.
const (
	autodiscoverRequestNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	autodiscoverResponseNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	outlookResponseNS      = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// ErrUnknownSchema is returned for an Autodiscover request that asks for a
// response schema other than Outlook's (mobile sync, which sealmail does not offer).
var ErrUnknownSchema = errors.New("autodiscover: only the outlook response schema is offered")

// AutodiscoverAddress reads the e-mail address from an Autodiscover request.
func AutodiscoverAddress(r io.Reader) (string, error) {
	var req struct {
		XMLName xml.Name `xml:"Autodiscover"`
		Request struct {
			EMailAddress   string `xml:"EMailAddress"`
			ResponseSchema string `xml:"AcceptableResponseSchema"`
		} `xml:"Request"`
	}
	if err := xml.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&req); err != nil {
		return "", fmt.Errorf("autodiscover: %w", err)
	}
	if req.XMLName.Space != autodiscoverRequestNS {
		return "", fmt.Errorf("autodiscover: request namespace %q", req.XMLName.Space)
	}
	if rs := strings.TrimSpace(req.Request.ResponseSchema); rs != "" && rs != outlookResponseNS {
		return "", ErrUnknownSchema
	}
	addr := strings.TrimSpace(req.Request.EMailAddress)
	if addr == "" {
		return "", errors.New("autodiscover: no EMailAddress")
	}
	return addr, nil
}

// Autodiscover returns Outlook's POX answer for address: IMAP and SMTP
// settings, the address as the login name.
func Autodiscover(address, displayName string, s Server) ([]byte, error) {
	type protocol struct {
		Type           string `xml:"Type"`
		Server         string `xml:"Server"`
		Port           int    `xml:"Port"`
		LoginName      string `xml:"LoginName"`
		DomainRequired string `xml:"DomainRequired"`
		SPA            string `xml:"SPA"`
		SSL            string `xml:"SSL"`
		Encryption     string `xml:"Encryption"`
		AuthRequired   string `xml:"AuthRequired"`
	}
	type account struct {
		AccountType string     `xml:"AccountType"`
		Action      string     `xml:"Action"`
		Protocols   []protocol `xml:"Protocol"`
	}
	type response struct {
		XMLNS       string  `xml:"xmlns,attr"`
		DisplayName string  `xml:"User>DisplayName,omitempty"`
		Account     account `xml:"Account"`
	}
	type autodiscover struct {
		XMLName  xml.Name `xml:"Autodiscover"`
		XMLNS    string   `xml:"xmlns,attr"`
		Response response `xml:"Response"`
	}
	// Encryption SSL is implicit TLS, TLS is STARTTLS.
	proto := func(typ string, port int, enc string) protocol {
		return protocol{typ, s.Host, port, address, "off", "off", "on", enc, "on"}
	}
	var ps []protocol
	switch {
	case s.IMAPS != 0:
		ps = append(ps, proto("IMAP", s.IMAPS, "SSL"))
	case s.IMAP != 0:
		ps = append(ps, proto("IMAP", s.IMAP, "TLS"))
	}
	switch {
	case s.Submissions != 0:
		ps = append(ps, proto("SMTP", s.Submissions, "SSL"))
	case s.Submission != 0:
		ps = append(ps, proto("SMTP", s.Submission, "TLS"))
	}
	if len(ps) != 2 {
		return nil, errors.New("autodiscover: IMAP and submission listeners must be on")
	}
	return marshal(autodiscover{XMLNS: autodiscoverResponseNS, Response: response{
		XMLNS: outlookResponseNS, DisplayName: displayName,
		Account: account{AccountType: "email", Action: "settings", Protocols: ps},
	}})
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
