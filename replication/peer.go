package replication

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ledgermq/ledgermq/commitlog"
)

// The peer protocol runs beside Raft on the same port (see Mux). A client
// sends requests and reads one response to each, on one connection:
//
//	request:  op u8 | from u64 | to u64 | maxBytes u32        (21 bytes)
//	fetch response:  status u8 | first u64 | last u64 | count u32 | count frames
//	status response: status u8 | len u32 | JSON PeerStatus
//	suspect response: status u8 | len u32 | JSON SuspectView
//	error response:  status u8 (statusError) | len u32 | message
//
// Frames are commitlog frames (EncodeEntry), each with its CRC32C, so a
// restoring follower verifies every entry it receives.
const (
	opFetch  byte = 1
	opStatus byte = 2
	// opSuspect asks for the peer's SuspectView (see failover.go).
	opSuspect byte = 3

	statusOK      byte = 0
	statusError   byte = 1
	peerReqSize        = 21
	maxFetchBytes      = 16 << 20
	peerIOTimeout      = 30 * time.Second
)

// PeerStatus is what a node reports about itself to its peers.
type PeerStatus struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	FirstIndex   uint64 `json:"first_index"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	APIAddr      string `json:"api_addr,omitempty"`
	KafkaAddr    string `json:"kafka_addr,omitempty"`
	// DiskError is set when the node's commit log failed: raft is stopped
	// there (Role "shutdown") until it is restarted. See Node.DiskError.
	DiskError string `json:"disk_error,omitempty"`
}

type fetchResult struct {
	First, Last uint64 // the source's log bounds (Last < First: empty)
	Entries     []commitlog.Entry
}

// peerServer answers peer-protocol requests from the local log.
type peerServer struct {
	log     *commitlog.Log
	status  func() PeerStatus
	suspect func() SuspectView
}

func (s *peerServer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	w := bufio.NewWriterSize(c, 64<<10)
	req := make([]byte, peerReqSize)
	for {
		c.SetDeadline(time.Now().Add(peerIOTimeout))
		if _, err := io.ReadFull(r, req); err != nil {
			return
		}
		var err error
		switch req[0] {
		case opFetch:
			err = s.fetch(w, binary.LittleEndian.Uint64(req[1:]), binary.LittleEndian.Uint64(req[9:]), int(binary.LittleEndian.Uint32(req[17:])))
		case opStatus:
			b, _ := json.Marshal(s.status())
			err = writeBlob(w, statusOK, b)
		case opSuspect:
			b, _ := json.Marshal(s.suspect())
			err = writeBlob(w, statusOK, b)
		default:
			err = writeBlob(w, statusError, []byte(fmt.Sprintf("unknown op %d", req[0])))
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return
		}
	}
}

func (s *peerServer) fetch(w *bufio.Writer, from, to uint64, maxBytes int) error {
	first, last := s.log.FirstIndex(), s.log.LastIndex()
	var ents []commitlog.Entry
	if from >= first && from <= last && from <= to {
		var err error
		ents, err = s.log.ReadRange(from, min(maxBytes, maxFetchBytes))
		if err != nil && !errors.Is(err, commitlog.ErrBeforeFirst) && !errors.Is(err, commitlog.ErrAfterLast) {
			return writeBlob(w, statusError, []byte(err.Error()))
		}
		for i := range ents {
			if ents[i].Index > to {
				ents = ents[:i]
				break
			}
		}
	}
	hdr := make([]byte, 21)
	hdr[0] = statusOK
	binary.LittleEndian.PutUint64(hdr[1:], first)
	binary.LittleEndian.PutUint64(hdr[9:], last)
	binary.LittleEndian.PutUint32(hdr[17:], uint32(len(ents)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	var buf []byte
	for i := range ents {
		buf = commitlog.EncodeEntry(buf[:0], &ents[i])
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func writeBlob(w io.Writer, status byte, b []byte) error {
	hdr := make([]byte, 5)
	hdr[0] = status
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(b)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// peerConn is the client side of one peer-protocol connection.
type peerConn struct {
	c        net.Conn
	r        *bufio.Reader
	maxEntry int
}

func dialPeerConn(ctx context.Context, m *Mux, addr string, maxEntry int) (*peerConn, error) {
	c, err := m.dialPeer(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, err)
	}
	return &peerConn{c: c, r: bufio.NewReaderSize(c, 256<<10), maxEntry: maxEntry}, nil
}

func (p *peerConn) Close() error { return p.c.Close() }

func (p *peerConn) request(op byte, from, to uint64, maxBytes int) error {
	// Each exchange gets its own deadline: a long copy is many requests.
	p.c.SetDeadline(time.Now().Add(peerIOTimeout))
	req := make([]byte, peerReqSize)
	req[0] = op
	binary.LittleEndian.PutUint64(req[1:], from)
	binary.LittleEndian.PutUint64(req[9:], to)
	binary.LittleEndian.PutUint32(req[17:], uint32(maxBytes))
	_, err := p.c.Write(req)
	return err
}

func (p *peerConn) readBlob(status byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("peer response of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		return nil, err
	}
	if status == statusError {
		return nil, fmt.Errorf("peer error: %s", b)
	}
	return b, nil
}

// fetch asks for entries from..to (inclusive) up to maxBytes. Every frame
// is CRC-checked and must continue the sequence from from.
func (p *peerConn) fetch(from, to uint64, maxBytes int) (fetchResult, error) {
	if err := p.request(opFetch, from, to, maxBytes); err != nil {
		return fetchResult{}, err
	}
	var status [1]byte
	if _, err := io.ReadFull(p.r, status[:]); err != nil {
		return fetchResult{}, err
	}
	if status[0] != statusOK {
		_, err := p.readBlob(status[0])
		return fetchResult{}, err
	}
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(p.r, hdr); err != nil {
		return fetchResult{}, err
	}
	res := fetchResult{First: binary.LittleEndian.Uint64(hdr), Last: binary.LittleEndian.Uint64(hdr[8:])}
	count := binary.LittleEndian.Uint32(hdr[16:])
	if uint64(count) > to-from+1 {
		return fetchResult{}, fmt.Errorf("peer sent %d entries for %d..%d", count, from, to)
	}
	fh := make([]byte, 40)
	for i := uint32(0); i < count; i++ {
		if _, err := io.ReadFull(p.r, fh); err != nil {
			return fetchResult{}, err
		}
		dataLen := binary.LittleEndian.Uint32(fh[4:])
		extLen := binary.LittleEndian.Uint32(fh[8:])
		if uint64(dataLen)+uint64(extLen) > uint64(p.maxEntry) {
			return fetchResult{}, fmt.Errorf("peer frame of %d bytes exceeds the maximum entry size", uint64(dataLen)+uint64(extLen))
		}
		frame := make([]byte, 40+int(dataLen)+int(extLen))
		copy(frame, fh)
		if _, err := io.ReadFull(p.r, frame[40:]); err != nil {
			return fetchResult{}, err
		}
		e, _, err := commitlog.DecodeEntry(frame, p.maxEntry)
		if err != nil {
			return fetchResult{}, fmt.Errorf("entry %d from peer: %w", from+uint64(i), err)
		}
		if e.Index != from+uint64(i) {
			return fetchResult{}, fmt.Errorf("peer sent entry %d, expected %d", e.Index, from+uint64(i))
		}
		res.Entries = append(res.Entries, e)
	}
	return res, nil
}

func (p *peerConn) status() (PeerStatus, error) {
	var st PeerStatus
	return st, p.ask(opStatus, &st)
}

// ask sends a request without arguments and decodes its JSON answer.
func (p *peerConn) ask(op byte, out any) error {
	if err := p.request(op, 0, 0, 0); err != nil {
		return err
	}
	var status [1]byte
	if _, err := io.ReadFull(p.r, status[:]); err != nil {
		return err
	}
	b, err := p.readBlob(status[0])
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode peer answer to op %d: %w", op, err)
	}
	return nil
}
