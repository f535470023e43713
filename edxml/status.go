package edxml

import (
	"errors"
	"fmt"
	"time"
)

// Status codes of the status (tracking) messages, as three independent
// implementations of the standard agree on them.
const (
	StatusArrived       = "01" // đã đến
	StatusRefused       = "02" // từ chối tiếp nhận, trả lại (Decree 30 Art. 21.2.b)
	StatusRegistered    = "03" // đã tiếp nhận, vào sổ
	StatusAssigned      = "04" // đã phân công xử lý
	StatusProcessing    = "05" // đang xử lý
	StatusDone          = "06" // hoàn thành
	StatusRecallRequest = "13" // yêu cầu lấy lại
	StatusRecallAgreed  = "15" // đồng ý lấy lại / cập nhật
	StatusRecallRefused = "16" // từ chối lấy lại / cập nhật
)

// StatusNames are the codes' meanings, Vietnamese and English.
var StatusNames = map[string][2]string{
	StatusArrived:       {"Đã đến", "arrived"},
	StatusRefused:       {"Từ chối tiếp nhận, trả lại", "refused, returned"},
	StatusRegistered:    {"Đã tiếp nhận, vào sổ", "received and registered"},
	StatusAssigned:      {"Đã phân công xử lý", "assigned"},
	StatusProcessing:    {"Đang xử lý", "in progress"},
	StatusDone:          {"Hoàn thành", "done"},
	StatusRecallRequest: {"Yêu cầu thu hồi", "recall requested"},
	StatusRecallAgreed:  {"Đồng ý thu hồi, cập nhật", "recall or update agreed"},
	StatusRecallRefused: {"Từ chối thu hồi, cập nhật", "recall or update refused"},
}

// Status is a status message about a document: who says it (From), about
// which document (ResponseFor), when (TimeLayout) and what.
type Status struct {
	ResponseFor ResponseFor `xml:"ResponseFor"`
	From        Organ       `xml:"From"`
	StatusCode  string      `xml:"StatusCode"`
	Description string      `xml:"Description,omitempty"`
	Timestamp   string      `xml:"Timestamp"`
	StaffInfo   *StaffInfo  `xml:"StaffInfo,omitempty"`
}

// NewStatus returns a status package; t is written in its own location.
func NewStatus(s Status, t time.Time) *Package {
	s.Timestamp = t.Format(TimeLayout)
	return &Package{Envelope: Envelope{Header: EnvelopeHeader{Status: &s}}}
}

func (s *Status) check() error {
	if _, ok := StatusNames[s.StatusCode]; !ok {
		return fmt.Errorf("edxml: unknown StatusCode %q", s.StatusCode)
	}
	if s.ResponseFor.DocumentID == "" {
		return errors.New("edxml: Status/ResponseFor/DocumentId is empty")
	}
	if s.From.OrganID == "" {
		return errors.New("edxml: Status/From/OrganId is empty")
	}
	if _, err := time.Parse(TimeLayout, s.Timestamp); err != nil {
		return fmt.Errorf("edxml: Status/Timestamp %q is not yyyy/MM/dd HH:mm:ss", s.Timestamp)
	}
	return nil
}
