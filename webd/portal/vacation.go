package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sealmail/mailstore"
)

// vacationForm is the out-of-office form as the page shows it. Days are
// YYYY-MM-DD in the server's time zone (what <input type=date> sends); Until
// is the last day away, included: the store's Until is the next midnight.
type vacationForm struct {
	On          bool
	Subject     string
	Body        string
	From, Until string
	Status      string // what the reply does now, in words
	MaxSubject  int
	MaxBody     int
}

var vacationPage = NewPage(Text{"Trả lời tự động khi vắng mặt", "Out-of-office reply"}, `
{{with .Data}}<p class="card">{{.Status}}</p>
<div class="card">
<form method="post" action="/vacation" class="stack">
{{$.CSRFField}}
<label class="check"><input type="checkbox" name="on" value="1"{{if .On}} checked{{end}}> {{$.T "Bật trả lời tự động" "Send out-of-office replies"}}</label>
<label>{{$.T "Tiêu đề" "Subject"}}
<input type="text" name="subject" value="{{.Subject}}" maxlength="{{.MaxSubject}}" placeholder="{{$.T "(để trống: Auto: tiêu đề thư nhận được)" "(empty: Auto: the subject of the mail answered)"}}"></label>
<label>{{$.T "Nội dung" "Message"}}
<textarea name="body" rows="8" required>{{.Body}}</textarea></label>
<div class="grid2">
<label>{{$.T "Từ ngày" "From"}} <span class="hint">{{$.T "(để trống: ngay bây giờ)" "(empty: now)"}}</span>
<input type="date" name="from" value="{{.From}}"></label>
<label>{{$.T "Đến hết ngày" "Until the end of"}} <span class="hint">{{$.T "(để trống: đến khi tắt)" "(empty: until turned off)"}}</span>
<input type="date" name="until" value="{{.Until}}"></label>
</div>
<button>{{$.T "Lưu" "Save"}}</button>
</form>
</div>
<p class="hint">{{$.T "Mỗi người gửi chỉ nhận thư trả lời một lần trong 7 ngày. Không trả lời thư từ danh sách thư, thư tự động hay thư không gửi trực tiếp tới bạn." "Each sender gets the reply once in 7 days. Mailing lists, automatic mail and mail not addressed to you get none."}}</p>
{{end}}`)

// defaultVacation is the text offered before the first reply is set; no
// subject, so that replies say "Auto: " and the subject they answer.
var defaultVacation = mailstore.Vacation{
	Body: "Xin chào,\n\nTôi đang vắng mặt và sẽ trả lời thư của bạn khi trở lại.\n\n" +
		"Hello,\n\nI am out of the office and will answer your mail when I am back.\n",
}

const dayLayout = time.DateOnly

func (s *Server) getVacation(w http.ResponseWriter, r *http.Request) {
	a, _ := Account(r)
	f, ok := s.vacationView(w, r, a.Address)
	if !ok {
		return
	}
	vacationPage.Render(w, r, http.StatusOK, f)
}

// vacationView fills the form from the stored reply, on or off (a reply
// turned off is offered again as it was), or writes an error page.
func (s *Server) vacationView(w http.ResponseWriter, r *http.Request, address string) (vacationForm, bool) {
	v, on, err := s.Store.SavedVacation(r.Context(), address)
	if err != nil {
		s.Logger.Error("web: read vacation", "account", address, "err", err)
		Error(w, r, http.StatusServiceUnavailable, busy)
		return vacationForm{}, false
	}
	f := vacationForm{On: on, MaxSubject: mailstore.MaxVacationSubject, MaxBody: mailstore.MaxVacationBody}
	if v == nil {
		v = &defaultVacation
	}
	f.Subject, f.Body = v.Subject, v.Body
	if !v.From.IsZero() {
		f.From = v.From.In(time.Local).Format(dayLayout)
	}
	if !v.Until.IsZero() {
		f.Until = v.Until.In(time.Local).Add(-time.Second).Format(dayLayout)
	}
	f.Status = s.vacationStatus(r, f.On, v)
	return f, true
}

// vacationStatus says in words what the reply does now.
func (s *Server) vacationStatus(r *http.Request, on bool, v *mailstore.Vacation) string {
	now := s.now()
	view := &View{Lang: Lang(r)}
	last := func() string { return view.Date(v.Until.In(time.Local).Add(-time.Second)) }
	switch {
	case !on:
		return T(r, "Trả lời tự động đang tắt.", "Out-of-office replies are off.")
	case !v.Until.IsZero() && !now.Before(v.Until):
		return T(r, "Trả lời tự động đã kết thúc ngày "+last()+": không còn gửi.",
			"Out-of-office replies ended on "+last()+": none are sent.")
	case !v.From.IsZero() && now.Before(v.From):
		return T(r, "Trả lời tự động sẽ bắt đầu ngày "+view.Date(v.From.In(time.Local))+".",
			"Out-of-office replies start on "+view.Date(v.From.In(time.Local))+".")
	case !v.Until.IsZero():
		return T(r, "Trả lời tự động đang bật, đến hết ngày "+last()+".",
			"Out-of-office replies are on, until the end of "+last()+".")
	}
	return T(r, "Trả lời tự động đang bật, đến khi tắt.", "Out-of-office replies are on until turned off.")
}

func (s *Server) postVacation(w http.ResponseWriter, r *http.Request) {
	a, _ := Account(r)
	f := vacationForm{
		On:         r.PostForm.Get("on") != "",
		Subject:    strings.TrimSpace(r.PostForm.Get("subject")),
		Body:       strings.ReplaceAll(r.PostForm.Get("body"), "\r\n", "\n"),
		From:       strings.TrimSpace(r.PostForm.Get("from")),
		Until:      strings.TrimSpace(r.PostForm.Get("until")),
		MaxSubject: mailstore.MaxVacationSubject,
		MaxBody:    mailstore.MaxVacationBody,
	}
	refuse := func(status int, t Text) {
		f.Status = T(r, "Chưa lưu: hãy sửa rồi gửi lại.", "Not saved: correct the form and send it again.")
		vacationPage.RenderMessage(w, r, status, Message{Text: t, Error: true}, f)
	}
	var v *mailstore.Vacation
	if f.On {
		v = &mailstore.Vacation{Subject: f.Subject, Body: f.Body}
		if t, ok := checkVacation(v, f.From, f.Until, s.now()); !ok {
			refuse(http.StatusBadRequest, t)
			return
		}
	}
	err := s.Store.SetVacation(r.Context(), a.Address, v)
	if errors.Is(err, mailstore.ErrInvalid) {
		// What checkVacation did not foresee; the store's words are English.
		refuse(http.StatusBadRequest, Text{"Không lưu được: " + err.Error(), "Not saved: " + err.Error()})
		return
	}
	if err != nil {
		s.Logger.Error("web: set vacation", "account", a.Address, "err", err)
		refuse(http.StatusServiceUnavailable, busy)
		return
	}
	s.Logger.Info("web vacation set", "account", a.Address, "on", v != nil)
	if f, ok := s.vacationView(w, r, a.Address); ok {
		vacationPage.RenderMessage(w, r, http.StatusOK, Message{Text: Text{"Đã lưu.", "Saved."}}, f)
	}
}

// checkVacation reads the form's days into v and checks what the store
// would refuse, to say it in both languages.
func checkVacation(v *mailstore.Vacation, from, until string, now time.Time) (Text, bool) {
	if strings.TrimSpace(v.Body) == "" {
		return Text{"Hãy viết nội dung thư trả lời.", "Write the reply's message."}, false
	}
	if n := utf8.RuneCountInString(v.Subject); n > mailstore.MaxVacationSubject || strings.ContainsAny(v.Subject, "\r\n") {
		return Text{"Tiêu đề phải là một dòng, tối đa " + strconv.Itoa(mailstore.MaxVacationSubject) + " ký tự.",
			"The subject must be one line of at most " + strconv.Itoa(mailstore.MaxVacationSubject) + " characters."}, false
	}
	if len(v.Body) > mailstore.MaxVacationBody {
		return Text{"Nội dung quá dài: tối đa " + strconv.Itoa(mailstore.MaxVacationBody/1024) + " KB.",
			"The message is too long: at most " + strconv.Itoa(mailstore.MaxVacationBody/1024) + " KB."}, false
	}
	day := func(s string) (time.Time, bool) {
		if s == "" {
			return time.Time{}, true
		}
		t, err := time.ParseInLocation(dayLayout, s, time.Local)
		return t, err == nil
	}
	var ok bool
	if v.From, ok = day(from); !ok {
		return Text{"Ngày bắt đầu không hợp lệ: " + from, "The start day is not a date: " + from}, false
	}
	last, ok := day(until)
	if !ok {
		return Text{"Ngày kết thúc không hợp lệ: " + until, "The end day is not a date: " + until}, false
	}
	if !last.IsZero() {
		v.Until = last.AddDate(0, 0, 1)
		if !v.From.IsZero() && last.Before(v.From) {
			return Text{"Ngày kết thúc trước ngày bắt đầu.", "The end day is before the start day."}, false
		}
		if !now.Before(v.Until) {
			return Text{"Ngày kết thúc đã qua.", "The end day is past."}, false
		}
	}
	return Text{}, true
}
