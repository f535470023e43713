// Package book lays out a year's register of official documents as Decree
// 30/2020 Appendix IV prints it (sổ đăng ký văn bản đi / đến), for the
// clerk to print, sign and bind (Art. 16.2.b, 22.3.b): as a PDF on A4
// landscape, or as CSV and XLSX for spreadsheets.
package book

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/unicode/norm"

	"sealmail/mailstore"
)

// Book is one register of one agency for one year.
type Book struct {
	Agency       string // the agency's name, as headed on the register
	Direction    mailstore.Direction
	Year         int
	Confidential bool // the register of confidential (mật) documents
	Entries      []mailstore.DocEntry
	Location     *time.Location // dates are printed in it; nil means Vietnam's
}

// Column is one column of the register.
type Column struct {
	Title string
	En    string  // the title in English, for pages shown in English; the printed register is Vietnamese
	Width float64 // relative to the others: the share of the page it takes
}

var (
	outColumns = []Column{
		{"Số, ký hiệu văn bản", "Number and notation", 10}, {"Ngày tháng văn bản", "Date", 8.5},
		{"Tên loại và trích yếu nội dung văn bản", "Type and abstract", 24}, {"Người ký", "Signed by", 10},
		{"Nơi nhận văn bản", "Sent to", 15}, {"Đơn vị, người nhận bản lưu", "Filed copy kept by", 9},
		{"Số lượng bản", "Copies", 5}, {"Ngày chuyển", "Sent on", 8.5}, {"Ký nhận", "Acknowledged", 11},
		{"Ghi chú", "Notes", 11},
	}
	inColumns = []Column{
		{"Ngày đến", "Received on", 8.5}, {"Số đến", "Incoming no.", 5}, {"Tác giả", "Issued by", 13},
		{"Số, ký hiệu", "Number and notation", 10}, {"Ngày tháng", "Date", 8.5},
		{"Tên loại và trích yếu nội dung", "Type and abstract", 24}, {"Đơn vị hoặc người nhận", "Passed to", 12},
		{"Ký nhận", "Acknowledged", 10}, {"Ghi chú", "Notes", 15},
	}
)

// Columns returns the register's columns, in Appendix IV's order.
func (b *Book) Columns() []Column {
	if b.Direction == mailstore.DocIn {
		return inColumns
	}
	return outColumns
}

// Title is the register's name: SỔ ĐĂNG KÝ VĂN BẢN ĐI, and so on.
func (b *Book) Title() string {
	t := "SỔ ĐĂNG KÝ VĂN BẢN ĐI"
	if b.Direction == mailstore.DocIn {
		t = "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN"
	}
	if b.Confidential {
		t += " MẬT"
	}
	return t
}

func (b *Book) loc() *time.Location {
	if b.Location != nil {
		return b.Location
	}
	return time.FixedZone("ICT", 7*60*60)
}

// Rows returns the register's lines as text, one cell per column, in NFC
// so that every reader and font sees the same Vietnamese letters.
func (b *Book) Rows() [][]string {
	rows := make([][]string, 0, len(b.Entries))
	for _, e := range b.Entries {
		var row []string
		if b.Direction == mailstore.DocIn {
			row = []string{e.Time.In(b.loc()).Format("02/01/2006 15:04"), strconv.Itoa(e.Number), e.Organ, e.Notation,
				docDate(e.DocDate), abstract(e), strings.Join(e.Recipients, "; "), b.acks(e), notes(e)}
		} else {
			row = []string{e.Notation, docDate(e.DocDate), abstract(e), e.Signer, strings.Join(e.Recipients, "; "),
				e.FiledWith, strconv.Itoa(e.Copies), e.Time.In(b.loc()).Format("02/01/2006"), b.acks(e), notes(e)}
		}
		for i := range row {
			row[i] = norm.NFC.String(row[i])
		}
		rows = append(rows, row)
	}
	return rows
}

// docDate prints a YYYY-MM-DD date as Vietnamese documents do: 28/11/2026.
func docDate(s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("02/01/2006")
}

func abstract(e mailstore.DocEntry) string {
	if e.DocType == "" {
		return e.Subject
	}
	return e.DocType + ": " + e.Subject
}

// acks fills the acknowledgement column (ký nhận) of an electronic document
// with the receipts the other side's system returned; a paper document's
// is left for a signature on the printed page.
func (b *Book) acks(e mailstore.DocEntry) string {
	var out []string
	for _, a := range e.Acks {
		s := a.StatusCode + " " + a.Party + " " + a.Time.In(b.loc()).Format("02/01/2006 15:04")
		if a.Reason != "" {
			s += " (" + a.Reason + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func notes(e mailstore.DocEntry) string {
	medium := "Văn bản điện tử"
	if e.Medium == mailstore.MediumPaper {
		medium = "Văn bản giấy"
	}
	if e.Notes == "" {
		return medium
	}
	return medium + ". " + e.Notes
}

// heading is the lines above the table: the agency, the register, the year.
func (b *Book) heading() []string {
	return []string{norm.NFC.String(strings.ToUpper(b.Agency)), b.Title(), fmt.Sprintf("Năm %d", b.Year)}
}

// WriteCSV writes the register as CSV: the column titles, then a line per
// document, UTF-8 with a byte order mark so that spreadsheets take it as
// UTF-8.
func (b *Book) WriteCSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	c := csv.NewWriter(w)
	var head []string
	for _, col := range b.Columns() {
		head = append(head, col.Title)
	}
	c.Write(head)
	for _, r := range b.Rows() {
		c.Write(r)
	}
	c.Flush()
	return c.Error()
}

// WriteXLSX writes the register as an Excel workbook of one sheet: the
// heading, the column titles and a line per document, set to print on A4
// landscape with the titles repeated on every page.
func (b *Book) WriteXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	sheet := fmt.Sprintf("%d", b.Year)
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	head := b.heading()
	cols := b.Columns()
	last, _ := excelize.ColumnNumberToName(len(cols))
	for i, line := range head {
		cell := fmt.Sprintf("A%d", i+1)
		if err := f.SetCellValue(sheet, cell, line); err != nil {
			return err
		}
		if err := f.MergeCell(sheet, cell, fmt.Sprintf("%s%d", last, i+1)); err != nil {
			return err
		}
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Family: "Times New Roman", Size: 12},
		Alignment: &excelize.Alignment{Horizontal: "center", Vertical: "center", WrapText: true},
		Border:    borders()})
	if err != nil {
		return err
	}
	body, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Family: "Times New Roman", Size: 11},
		Alignment: &excelize.Alignment{Vertical: "top", WrapText: true}, Border: borders()})
	if err != nil {
		return err
	}
	title, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Family: "Times New Roman", Size: 13},
		Alignment: &excelize.Alignment{Horizontal: "center"}})
	if err != nil {
		return err
	}
	if err := f.SetCellStyle(sheet, "A1", fmt.Sprintf("%s%d", last, len(head)), title); err != nil {
		return err
	}
	headRow := len(head) + 2
	for i, col := range cols {
		name, _ := excelize.ColumnNumberToName(i + 1)
		if err := f.SetCellValue(sheet, fmt.Sprintf("%s%d", name, headRow), col.Title); err != nil {
			return err
		}
		if err := f.SetColWidth(sheet, name, name, col.Width*1.6); err != nil {
			return err
		}
	}
	if err := f.SetCellStyle(sheet, fmt.Sprintf("A%d", headRow), fmt.Sprintf("%s%d", last, headRow), bold); err != nil {
		return err
	}
	rows := b.Rows()
	for i, r := range rows {
		cells := make([]any, len(r))
		for j, v := range r {
			cells[j] = v
		}
		if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", headRow+1+i), &cells); err != nil {
			return err
		}
	}
	if len(rows) > 0 {
		if err := f.SetCellStyle(sheet, fmt.Sprintf("A%d", headRow+1), fmt.Sprintf("%s%d", last, headRow+len(rows)), body); err != nil {
			return err
		}
	}
	landscape, a4 := "landscape", 9 // 9: A4 in the OOXML paper size list
	if err := f.SetPageLayout(sheet, &excelize.PageLayoutOptions{Orientation: &landscape, Size: &a4}); err != nil {
		return err
	}
	if err := f.SetDefinedName(&excelize.DefinedName{Name: "_xlnm.Print_Titles", Scope: sheet,
		RefersTo: fmt.Sprintf("'%s'!$%d:$%d", sheet, headRow, headRow)}); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

func borders() []excelize.Border {
	var out []excelize.Border
	for _, side := range []string{"left", "right", "top", "bottom"} {
		out = append(out, excelize.Border{Type: side, Color: "000000", Style: 1})
	}
	return out
}
