package smtpd

import "github.com/emersion/go-sasl"

// loginServer is the server side of the LOGIN mechanism, which go-sasl lacks and
// Outlook and older phones still use: the user name, then the password, each
// asked for in turn unless the client sent it ahead.
type loginServer struct {
	check    func(username, password string) error
	username []byte
	asked    bool // the user name has been asked for or received
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case !l.asked && response == nil:
		l.asked = true
		return []byte("Username:"), false, nil
	case l.username == nil:
		l.asked = true
		l.username = append([]byte{}, response...)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(string(l.username), string(response))
}

var _ sasl.Server = (*loginServer)(nil)
