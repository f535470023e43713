package signingtest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// SealPNG draws a round red seal on a transparent background, as an agency's
// scanned seal looks: two rings and a five-pointed star, size pixels wide.
func SealPNG(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	red := color.NRGBA{0xd0, 0x10, 0x10, 0xff}
	c := float64(size) / 2
	star := starPolygon(c, c, c*0.42, c*0.17)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx, dy := float64(x)+0.5-c, float64(y)+0.5-c
			r := math.Hypot(dx, dy) / c
			if r > 0.9 && r < 0.98 || r > 0.62 && r < 0.66 || inside(star, float64(x)+0.5, float64(y)+0.5) {
				img.SetNRGBA(x, y, red)
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img) // to memory: cannot fail
	return b.Bytes()
}

func starPolygon(cx, cy, outer, inner float64) [][2]float64 {
	var p [][2]float64
	for i := 0; i < 10; i++ {
		r := outer
		if i%2 == 1 {
			r = inner
		}
		a := -math.Pi/2 + float64(i)*math.Pi/5
		p = append(p, [2]float64{cx + r*math.Cos(a), cy + r*math.Sin(a)})
	}
	return p
}

// inside is the even-odd rule.
func inside(poly [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a[1] > y) != (b[1] > y) && x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}
