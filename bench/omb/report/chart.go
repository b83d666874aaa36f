package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// palette colors the systems, in order of appearance.
var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

func colorOf(i int) color.RGBA { return palette[i%len(palette)] }

// chart is a plot area with axes on a white canvas.
type chart struct {
	img                    *image.RGBA
	left, top, right, bott int // plot area in pixels
	ymax                   float64
}

const width, height = 900, 460

func newChart(title, ylabel string, ymax float64) *chart {
	c := &chart{img: image.NewRGBA(image.Rect(0, 0, width, height)), left: 80, top: 40, right: width - 170, bott: height - 50}
	draw.Draw(c.img, c.img.Bounds(), image.White, image.Point{}, draw.Src)
	c.ymax = niceMax(ymax)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{220, 220, 220, 255}
	c.text(c.left, 20, title, black)
	c.text(8, c.top-10, ylabel, black)
	for i := 0; i <= 5; i++ {
		v := c.ymax * float64(i) / 5
		y := c.y(v)
		c.hline(c.left, c.right, y, grey)
		c.text(8, y+4, fmtNum(v), black)
	}
	c.hline(c.left, c.right, c.bott, black)
	c.vline(c.left, c.top, c.bott, black)
	return c
}

func (c *chart) y(v float64) int {
	if c.ymax <= 0 {
		return c.bott
	}
	return c.bott - int(math.Round(v/c.ymax*float64(c.bott-c.top)))
}

func (c *chart) hline(x0, x1, y int, col color.Color) {
	for x := x0; x <= x1; x++ {
		c.img.Set(x, y, col)
	}
}

func (c *chart) vline(x, y0, y1 int, col color.Color) {
	for y := y0; y <= y1; y++ {
		c.img.Set(x, y, col)
	}
}

// line draws a 2-pixel-thick segment.
func (c *chart) line(x0, y0, x1, y1 int, col color.Color) {
	n := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= n; i++ {
		x := x0 + (x1-x0)*i/n
		y := y0 + (y1-y0)*i/n
		c.img.Set(x, y, col)
		c.img.Set(x, y+1, col)
		c.img.Set(x+1, y, col)
	}
}

func (c *chart) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), image.NewUniform(col), image.Point{}, draw.Src)
}

func (c *chart) text(x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// legend lists names with their colors right of the plot area.
func (c *chart) legend(names []string) {
	for i, n := range names {
		y := c.top + 10 + i*20
		c.rect(c.right+15, y-9, c.right+27, y+1, colorOf(i))
		c.text(c.right+32, y, n, color.Black)
	}
}

func (c *chart) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// series is one named line of (x, y) points.
type series struct {
	name string
	x, y []float64
}

// lineChart plots lines over a shared x axis (seconds).
func lineChart(path, title, ylabel, xlabel string, ss []series) error {
	ymax, xmax := 0.0, 1.0
	for _, s := range ss {
		for i := range s.x {
			ymax, xmax = math.Max(ymax, s.y[i]), math.Max(xmax, s.x[i])
		}
	}
	c := newChart(title, ylabel, ymax)
	xpix := func(x float64) int { return c.left + int(x/xmax*float64(c.right-c.left)) }
	for i := 0; i <= 5; i++ {
		x := xmax * float64(i) / 5
		c.vline(xpix(x), c.bott, c.bott+4, color.Black)
		c.text(xpix(x)-8, c.bott+18, fmtNum(x), color.Black)
	}
	c.text((c.left+c.right)/2-20, c.bott+38, xlabel, color.Black)
	var names []string
	for k, s := range ss {
		names = append(names, s.name)
		for i := 1; i < len(s.x); i++ {
			c.line(xpix(s.x[i-1]), c.y(s.y[i-1]), xpix(s.x[i]), c.y(s.y[i]), colorOf(k))
		}
	}
	c.legend(names)
	return c.save(path)
}

// barChart draws groups (x labels) of bars, one bar per system.
func barChart(path, title, ylabel string, groups []string, systems []string, vals [][]float64) error {
	ymax := 0.0
	for _, vs := range vals {
		for _, v := range vs {
			ymax = math.Max(ymax, v)
		}
	}
	c := newChart(title, ylabel, ymax)
	gw := float64(c.right-c.left) / float64(max(len(groups), 1))
	bw := int(gw*0.8) / max(len(systems), 1)
	for g, name := range groups {
		x0 := c.left + int(float64(g)*gw+gw*0.1)
		for s := range systems {
			if g < len(vals[s]) && vals[s][g] > 0 {
				c.rect(x0+s*bw, c.y(vals[s][g]), x0+(s+1)*bw-1, c.bott, colorOf(s))
			}
		}
		c.text(x0, c.bott+18, name, color.Black)
	}
	c.legend(systems)
	return c.save(path)
}

// Line is one named series of (x, y) points for LineChart.
type Line struct {
	Name string
	X, Y []float64
}

// LineChart draws lines over a shared x axis into a PNG at path (used by
// bench/soak for its resource samples).
func LineChart(path, title, ylabel, xlabel string, lines []Line) error {
	ss := make([]series, len(lines))
	for i, l := range lines {
		ss[i] = series{name: l.Name, x: l.X, y: l.Y}
	}
	return lineChart(path, title, ylabel, xlabel, ss)
}
