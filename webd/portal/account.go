package portal

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"sealmail/mailstore"
)

var homePage = NewPage(Text{"Tài khoản", "Account"}, `
{{with .Account}}<div class="card">
<table>
<tr><th>{{$.T "Địa chỉ thư" "Mail address"}}</th><td>{{.Address}}</td></tr>
{{if .Name}}<tr><th>{{$.T "Họ và tên" "Name"}}</th><td>{{.Name}}</td></tr>{{end}}
<tr><th>{{$.T "Vai trò" "Role"}}</th><td>{{$.Data.Role}}</td></tr>
<tr><th>{{$.T "Dung lượng đã dùng" "Storage used"}}</th><td>
{{if .Quota}}{{$.Size .Used}} / {{$.Size .Quota}} ({{$.Data.Percent}}%)<br>
<meter min="0" max="{{.Quota}}" value="{{.Used}}" low="{{$.Data.Low}}" high="{{$.Data.High}}" optimum="0">{{$.Data.Percent}}%</meter>
{{if $.Data.Full}}<br><span class="error">{{$.T "Hộp thư gần đầy: hãy xoá bớt thư cũ (và dọn Thùng rác), nếu không thư mới sẽ bị từ chối." "The mailbox is nearly full: delete old mail (and empty the Trash), or new mail will be refused."}}</span>{{end}}
{{else}}{{$.Size .Used}} ({{$.T "không giới hạn" "no limit"}}){{end}}
</td></tr>
</table>
</div>
<ul>
<li><a href="/password">{{$.T "Đổi mật khẩu" "Change the password"}}</a></li>
<li><a href="/vacation">{{$.T "Trả lời tự động khi vắng mặt" "Out-of-office reply"}}</a></li>
<li><a href="/setup">{{$.T "Cài đặt ứng dụng thư và chứng thư của máy chủ" "Set up mail apps and the server's certificate"}}</a></li>
</ul>{{end}}
`)

type homeView struct {
	Role      string
	Percent   int
	Low, High int64
	Full      bool
}

// home is the account's page when logged in, the login form otherwise.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	a, ok := Account(r)
	if !ok {
		var msg *Message
		if reqOf(r).expired {
			msg = &Message{Text{"Phiên làm việc đã hết hạn: hãy đăng nhập lại.", "Your session has expired: log in again."}, true}
		}
		s.loginPage(w, r, http.StatusOK, loginForm{Next: "/"}, msg)
		return
	}
	q := homeView{Role: roleName(a.Role).In(Lang(r))}
	if a.Quota > 0 {
		q.Percent = int(a.Used * 100 / a.Quota)
		q.Low, q.High = a.Quota*8/10, a.Quota*95/100
		q.Full = a.Used >= q.High
	}
	homePage.Render(w, r, http.StatusOK, q)
}

var passwordPage = NewPage(Text{"Đổi mật khẩu", "Change the password"}, `
<div class="card">
<form method="post" action="/password" class="stack">
{{.CSRFField}}
<input type="hidden" name="username" value="{{.Account.Address}}" autocomplete="username">
<label>{{.T "Mật khẩu hiện tại" "Current password"}}
<input type="password" name="old" required autocomplete="current-password"></label>
<label>{{.T "Mật khẩu mới" "New password"}}
<input type="password" name="new" required minlength="10" autocomplete="new-password">
<span class="hint">{{.T "Ít nhất 10 ký tự, có cả chữ và chữ số hoặc ký hiệu, không chứa tên hộp thư." "At least 10 characters, with letters and digits or symbols, not containing the mailbox name."}}</span></label>
<label>{{.T "Nhập lại mật khẩu mới" "New password again"}}
<input type="password" name="confirm" required minlength="10" autocomplete="new-password"></label>
<button>{{.T "Đổi mật khẩu" "Change the password"}}</button>
</form>
</div>
<p class="hint">{{.T "Sau khi đổi, mọi phiên đăng nhập khác của tài khoản (trang web, Thunderbird, Outlook, điện thoại) bị đăng xuất: các ứng dụng thư sẽ hỏi mật khẩu mới." "Once changed, every other session of the account (web, Thunderbird, Outlook, phones) is logged out: mail apps will ask for the new password."}}</p>
`)

func (s *Server) getPassword(w http.ResponseWriter, r *http.Request) {
	passwordPage.Render(w, r, http.StatusOK, nil)
}

func (s *Server) postPassword(w http.ResponseWriter, r *http.Request) {
	a, _ := Account(r)
	old, pw, confirm := r.PostForm.Get("old"), r.PostForm.Get("new"), r.PostForm.Get("confirm")
	refuse := func(status int, t Text) {
		passwordPage.RenderMessage(w, r, status, Message{Text: t, Error: true}, nil)
	}
	if pw != confirm {
		refuse(http.StatusBadRequest, Text{"Hai lần nhập mật khẩu mới không khớp nhau. Mật khẩu chưa đổi.",
			"The two new passwords differ. The password was not changed."})
		return
	}
	if t, ok := checkStrength(a.Address, old, pw); !ok {
		refuse(http.StatusBadRequest, t)
		return
	}
	// The old password is a password check like a login: the same throttle,
	// so a stolen session cannot be used to guess it.
	if _, status, t := s.checkPassword(w, r, a.Address, old); status != 0 {
		if status == http.StatusUnauthorized {
			t = Text{"Mật khẩu hiện tại không đúng. Mật khẩu chưa đổi.", "The current password is wrong. The password was not changed."}
		}
		refuse(status, t)
		return
	}
	// SetPassword ends every session of the account, this one too: the
	// browser gets a new one, the others (web, IMAP, SMTP) are logged out.
	if err := s.Store.SetPassword(r.Context(), a.Address, pw); err != nil {
		s.Logger.Error("web: set password", "account", a.Address, "err", err)
		refuse(http.StatusServiceUnavailable, busy)
		return
	}
	s.Logger.Info("web password changed", "account", a.Address, "ip", clientAddr(r))
	q := reqOf(r)
	q.session = nil
	ws, err := s.startSession(r.Context(), w, a)
	if err != nil {
		s.Logger.Error("web: start session", "account", a.Address, "err", err)
		s.loginError(w, r, http.StatusOK, loginForm{Next: "/"}, Text{
			"Đã đổi mật khẩu. Hãy đăng nhập lại bằng mật khẩu mới.", "The password was changed. Log in again with the new one."})
		return
	}
	q.session = ws
	passwordPage.RenderMessage(w, r, http.StatusOK, Message{Text: Text{
		"Đã đổi mật khẩu. Các phiên đăng nhập khác đã bị đăng xuất.",
		"The password was changed. Other sessions were logged out."}}, nil)
}

// minPasswordLen is in characters. Length is what makes a password hard to
// guess (NIST SP 800-63B); 10 with two kinds of characters rules out words
// and dates without asking for what nobody remembers.
const minPasswordLen = 10

// checkStrength checks a new password against the rules the page states.
func checkStrength(address, old, pw string) (Text, bool) {
	n := utf8.RuneCountInString(pw)
	if n < minPasswordLen {
		return Text{"Mật khẩu mới quá ngắn: cần ít nhất " + strconv.Itoa(minPasswordLen) + " ký tự. Mật khẩu chưa đổi.",
			"The new password is too short: at least " + strconv.Itoa(minPasswordLen) + " characters. The password was not changed."}, false
	}
	if len(pw) > 1024 {
		return Text{"Mật khẩu mới quá dài. Mật khẩu chưa đổi.", "The new password is too long. The password was not changed."}, false
	}
	var letter, other bool
	for _, c := range pw {
		if unicode.IsLetter(c) {
			letter = true
		} else if !unicode.IsSpace(c) {
			other = true
		}
		if unicode.IsControl(c) {
			return Text{"Mật khẩu mới có ký tự điều khiển. Mật khẩu chưa đổi.", "The new password has control characters. The password was not changed."}, false
		}
	}
	if !letter || !other {
		return Text{"Mật khẩu mới cần có cả chữ cái và chữ số hoặc ký hiệu. Mật khẩu chưa đổi.",
			"The new password needs letters and digits or symbols. The password was not changed."}, false
	}
	local, _, _ := strings.Cut(strings.ToLower(address), "@")
	if len(local) >= 3 && strings.Contains(strings.ToLower(pw), local) {
		return Text{"Mật khẩu mới không được chứa tên hộp thư. Mật khẩu chưa đổi.",
			"The new password must not contain the mailbox name. The password was not changed."}, false
	}
	if pw == old {
		return Text{"Mật khẩu mới phải khác mật khẩu hiện tại. Mật khẩu chưa đổi.",
			"The new password must differ from the current one. The password was not changed."}, false
	}
	return Text{}, true
}

// roleName names a role for people.
func roleName(r mailstore.Role) Text {
	switch r {
	case mailstore.RoleClerk:
		return Text{"Văn thư", "Clerk"}
	case mailstore.RoleAdmin:
		return Text{"Quản trị", "Administrator"}
	}
	return Text{"Cán bộ", "Staff"}
}
