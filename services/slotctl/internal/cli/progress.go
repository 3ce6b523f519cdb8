package cli

import (
	"fmt"
	"io"
	"strings"
)

// progressBar draws "label [#####.....] done/total" on one line of w,
// redrawn in place. A nil *progressBar draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	total int
}

const barWidth = 30

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	p := &progressBar{w: w, label: label, total: total}
	p.set(0)
	return p
}

func (p *progressBar) set(done int) {
	if p == nil {
		return
	}
	filled := barWidth
	if p.total > 0 {
		filled = done * barWidth / p.total
	}
	fmt.Fprintf(p.w, "\r%-10s [%s%s] %d/%d", p.label, strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), done, p.total)
}

func (p *progressBar) done() {
	if p == nil {
		return
	}
	p.set(p.total)
	fmt.Fprintln(p.w)
}
