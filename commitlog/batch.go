package commitlog

import "encoding/binary"

const (
	// largePayload is the payload size (Data plus Extensions) from which
	// an entry is written from the caller's memory by a vectored write
	// instead of being copied into the encode buffer. Smaller entries are
	// copied: a vectored write of many small pieces, each with its own
	// alignment, costs the kernel more than the copy saves (1 KiB entries:
	// about 400 against 260 µs per MiB).
	largePayload = 64 << 10
	// maxRetainedBuffer bounds the encode buffer kept between appends.
	maxRetainedBuffer = 4 << 20
)

// writeBatch is one write to a segment: the frames of consecutive entries,
// as the list of buffers to write back to back (vecs). Frames are encoded
// into buf, in runs. When the file is a vectorWriter, a large entry is not
// copied: vecs holds its header (in hdrs) and the caller's Data and
// Extensions, between the runs before and after it. Each run starts at the
// position of buf aligned for its file offset (see alignFor).
type writeBatch struct {
	vectored bool     // large entries are referenced, not copied
	buf      []byte   // encoded frames; kept between appends
	run      int      // where the open run starts in buf, -1 if none
	hdrs     []byte   // headers of referenced entries
	vecs     [][]byte // closed runs and referenced entries, in file order
	pos      []int64  // file offset of each frame
	off      int64    // file offset of the write
	size     int64    // bytes in the write
	newest   int64    // newest AppendedAt in Unix nanoseconds
}

// prepare sizes the buffers for entries, so that nothing grows (and runs
// keep their alignment) while they are added, and starts a write at off
// into f.
func (b *writeBatch) prepare(entries []Entry, f File, off int64) {
	_, b.vectored = f.(vectorWriter)
	var need, refs int
	inRun := false
	for i := range entries {
		e := &entries[i]
		if b.referenced(e) {
			refs++
			inRun = false
			continue
		}
		if !inRun {
			need += pageSize // the most a run skips to align its start
			inRun = true
		}
		need += int(frameSize(e))
	}
	if cap(b.buf) < need {
		b.buf = make([]byte, 0, need)
	}
	if n := refs * frameHeaderSize; cap(b.hdrs) < n {
		b.hdrs = make([]byte, 0, n)
	}
	// Per referenced entry: header, Data, Extensions and the run after it.
	if n := 1 + 4*refs; cap(b.vecs) < n {
		b.vecs = make([][]byte, 0, n)
	}
	if cap(b.pos) < len(entries) {
		b.pos = make([]int64, 0, len(entries))
	}
	b.begin(off)
}

// begin starts a new write at off, after the previous one has been
// written: a segment roll starts a write at the new segment's first frame.
func (b *writeBatch) begin(off int64) {
	clear(b.vecs) // drop references to the callers' payloads
	b.buf, b.hdrs, b.vecs, b.pos = b.buf[:0], b.hdrs[:0], b.vecs[:0], b.pos[:0]
	b.run, b.off, b.size, b.newest = -1, off, 0, 0
}

// release ends the batch: the log keeps no reference to the entries, and
// no more than maxRetainedBuffer of encode buffer.
func (b *writeBatch) release() {
	b.begin(0)
	if cap(b.buf) > maxRetainedBuffer {
		b.buf = nil
	}
	if cap(b.pos)*8 > maxRetainedBuffer {
		b.pos = nil
	}
}

func (b *writeBatch) referenced(e *Entry) bool {
	return b.vectored && len(e.Data)+len(e.Extensions) >= largePayload
}

// add appends e's frame to the write.
func (b *writeBatch) add(e *Entry) {
	b.pos = append(b.pos, b.off+b.size)
	if b.referenced(e) {
		b.closeRun()
		b.hdrs = append(b.hdrs, make([]byte, frameHeaderSize)...)
		hdr := b.hdrs[len(b.hdrs)-frameHeaderSize:]
		putFrameHeader(hdr, e)
		binary.LittleEndian.PutUint32(hdr, frameCRC(hdr, e))
		b.vecs = append(b.vecs, hdr, e.Data, e.Extensions)
	} else {
		if b.run < 0 {
			b.openRun()
		}
		b.buf = appendFrame(b.buf, e)
	}
	b.size += frameSize(e)
	if ns := nanos(e.AppendedAt); ns > b.newest {
		b.newest = ns
	}
}

// openRun starts a run at the first position of buf, from its end, that
// is aligned for the file offset the run will be written at.
func (b *writeBatch) openRun() {
	at := alignFor(b.buf, len(b.buf), b.off+b.size)
	if at > cap(b.buf) { // prepare made room; if not, go unaligned
		at = len(b.buf)
	}
	b.buf = b.buf[:at]
	b.run = at
}

func (b *writeBatch) closeRun() {
	if b.run >= 0 && len(b.buf) > b.run {
		b.vecs = append(b.vecs, b.buf[b.run:len(b.buf):len(b.buf)])
	}
	b.run = -1
}

// buffers returns what to write, back to back, at off.
func (b *writeBatch) buffers() [][]byte {
	b.closeRun()
	return b.vecs
}

// writeBuffers writes bufs back to back at off: one WriteAt, or one
// WriteVAt for a write with referenced entries (only a vectorWriter gets
// those).
func writeBuffers(f File, bufs [][]byte, off int64) error {
	if vw, ok := f.(vectorWriter); ok && len(bufs) > 1 {
		_, err := vw.WriteVAt(bufs, off)
		return err
	}
	for _, p := range bufs {
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}
