// Package font holds DejaVu Serif (Bitstream Vera licence, see LICENSE), a
// serif with every Vietnamese glyph, for the text sealmail draws into
// signature appearances and prints in registers.
package font

import _ "embed"

// SerifTTF is DejaVu Serif as a TrueType file.
//
//go:embed DejaVuSerif.ttf
var SerifTTF []byte
