//go:build unix

package portal

import (
	"io/fs"
	"syscall"
)

// diskUse is the disk a file takes: its allocated blocks (st_blocks, in
// 512-byte units), or its length where the system does not say.
func diskUse(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512 // the conversion: not int64 on every system
	}
	return info.Size()
}
