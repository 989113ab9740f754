// Package chord runs LLaMA-family GGUF models in Go through chord's C library (libchord, found
// with pkg-config: `make install` writes chord.pc).
//
// A Model is loaded once and shared by any number of Sessions and goroutines; a Session is used by
// one goroutine at a time (another gets an error with StatusBusy). Generate streams text to a
// callback on the calling goroutine; Stream delivers events on a channel from chord's own thread
// through a polling goroutine. Both stop when their context is done (chord_session_cancel), within
// one token. Close frees a handle at once; a finalizer frees one that was forgotten.
//
// Standard library only (Go 1.19). Errors are *Error values carrying chord's status, so that
// errors.Is(err, chord.ErrCancelled) and errors.As work.
package chord

/*
#cgo pkg-config: chord
#include <stdint.h>
#include <stdlib.h>
#include <chord.h>

extern uint32_t chordGoText(char *text, size_t len, uintptr_t handle);
extern void chordGoLog(uint32_t level, char *message, size_t len, uintptr_t handle);
extern void chordGoFree(uintptr_t handle);

static uint32_t chord_go_text(const char *text, size_t len, void *ud) {
	return chordGoText((char *)text, len, (uintptr_t)ud);
}
static void chord_go_log(uint32_t level, const char *message, size_t len, void *ud) {
	chordGoLog(level, (char *)message, len, (uintptr_t)ud);
}
static void chord_go_free(void *ud) { chordGoFree((uintptr_t)ud); }

// The handles travel as integers (runtime/cgo.Handle values), never as Go pointers.
static chord_status chord_go_generate(const chord_session *s, const chord_generate_params *p,
                                      uintptr_t handle, uint32_t *reason, chord_error **err) {
	return chord_session_generate(s, p, chord_go_text, (void *)handle, reason, err);
}
static chord_status chord_go_set_log(uintptr_t handle, int on, chord_error **err) {
	if (!on) return chord_set_log_callback(NULL, NULL, NULL, err);
	return chord_set_log_callback(chord_go_log, (void *)handle, chord_go_free, err);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
)

// Status is a chord_status: 0 for success or a CHORD_E_* code.
type Status uint32

// The statuses an error can carry (chord.h's CHORD_E_*).
const (
	StatusInvalidArgument Status = C.CHORD_E_INVALID_ARGUMENT
	StatusIO              Status = C.CHORD_E_IO
	StatusBadModel        Status = C.CHORD_E_BAD_MODEL
	StatusUnsupported     Status = C.CHORD_E_UNSUPPORTED
	StatusContextFull     Status = C.CHORD_E_CONTEXT_FULL
	StatusBusy            Status = C.CHORD_E_BUSY
	StatusCancelled       Status = C.CHORD_E_CANCELLED
	StatusGrammar         Status = C.CHORD_E_GRAMMAR
)

// String is the status' name, e.g. "CANCELLED".
func (s Status) String() string { return C.GoString(C.chord_status_name(C.chord_status(s))) }

// Error is a chord failure: its status and chord's message.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("chord: %s (%s)", e.Message, e.Status) }

// Is reports whether target is an *Error with the same status: errors.Is(err, chord.ErrCancelled).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrCancelled   = &Error{Status: StatusCancelled}
	ErrBusy        = &Error{Status: StatusBusy}
	ErrIO          = &Error{Status: StatusIO}
	ErrUnsupported = &Error{Status: StatusUnsupported}
	ErrGrammar     = &Error{Status: StatusGrammar}
)

// check turns a status and its error object into an *Error (nil for success).
func check(st C.chord_status, err *C.chord_error) error {
	defer C.chord_error_free(err)
	if st == C.CHORD_OK {
		return nil
	}
	msg := C.GoString(C.chord_status_name(st))
	if err != nil {
		msg = C.GoString(C.chord_error_message(err))
	}
	return &Error{Status: Status(st), Message: msg}
}

// abiVersion is the ABI version this package was built against (a variable so that a test can
// pretend to be another build).
var abiVersion = uint32(C.CHORD_ABI_VERSION)

func checkABI() error {
	if lib := uint32(C.chord_abi_version()); lib != abiVersion {
		return &Error{Status: StatusUnsupported, Message: fmt.Sprintf(
			"libchord has ABI version %d but this Go package was built for ABI version %d", lib, abiVersion)}
	}
	return nil
}

// live counts the chord handles this package holds (models and sessions), for leak checks.
var live int64

// LiveHandles is the number of models and sessions not yet closed.
func LiveHandles() int64 { return atomic.LoadInt64(&live) }

// cstr passes a Go string to chord as (pointer, length) in C memory, freed by the returned func.
func cstr(s string) (*C.char, C.size_t, func()) {
	if len(s) == 0 {
		return nil, 0, func() {}
	}
	p := C.CBytes([]byte(s))
	return (*C.char)(p), C.size_t(len(s)), func() { C.free(p) }
}

// Option sets a model option.
type Option func(*C.chord_model_options) error

// WithThreads sets the worker threads (0: one per core).
func WithThreads(n int) Option {
	return func(o *C.chord_model_options) error {
		var e *C.chord_error
		return check(C.chord_model_options_set_threads(o, C.uint32_t(n), &e), e)
	}
}

// WithMemoryBudget sets a memory budget in bytes (larger models are paged).
func WithMemoryBudget(bytes uint64) Option {
	return func(o *C.chord_model_options) error {
		var e *C.chord_error
		return check(C.chord_model_options_set_memory_budget(o, C.uint64_t(bytes), &e), e)
	}
}

// Model is a loaded model.
type Model struct {
	mu sync.Mutex
	p  *C.chord_model
}

// LoadModel loads a GGUF file.
func LoadModel(path string, opts ...Option) (*Model, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var o *C.chord_model_options
	var e *C.chord_error
	if err := check(C.chord_model_options_new(&o, &e), e); err != nil {
		return nil, err
	}
	defer C.chord_model_options_free(o)
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	p, n, free := cstr(path)
	defer free()
	var m *C.chord_model
	if err := check(C.chord_model_load(p, n, o, &m, &e), e); err != nil {
		return nil, err
	}
	atomic.AddInt64(&live, 1)
	model := &Model{p: m}
	runtime.SetFinalizer(model, (*Model).Close)
	return model, nil
}

// Close frees the model (sessions keep their own reference). Safe to call twice.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil {
		C.chord_model_free(m.p)
		m.p = nil
		atomic.AddInt64(&live, -1)
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

func (m *Model) handle() (*C.chord_model, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil {
		return nil, &Error{Status: StatusInvalidArgument, Message: "the model is closed"}
	}
	return m.p, nil
}

// EOS is the model's end-of-sequence token.
func (m *Model) EOS() (uint32, error) {
	p, err := m.handle()
	if err != nil {
		return 0, err
	}
	var v C.uint64_t
	var e *C.chord_error
	if err := check(C.chord_model_info(p, C.CHORD_INFO_TOKEN_EOS, &v, &e), e); err != nil {
		return 0, err
	}
	runtime.KeepAlive(m)
	return uint32(v), nil
}

// Session is a context over a model. One goroutine at a time.
type Session struct {
	mu sync.Mutex
	p  *C.chord_session
}

// NewSession creates a session with nCtx tokens of context (0: the model's, at most 4096).
func (m *Model) NewSession(nCtx int) (*Session, error) {
	mp, err := m.handle()
	if err != nil {
		return nil, err
	}
	var o *C.chord_session_options
	var e *C.chord_error
	if err := check(C.chord_session_options_new(&o, &e), e); err != nil {
		return nil, err
	}
	defer C.chord_session_options_free(o)
	if err := check(C.chord_session_options_set_n_ctx(o, C.uint32_t(nCtx), &e), e); err != nil {
		return nil, err
	}
	var s *C.chord_session
	if err := check(C.chord_session_new(mp, o, &s, &e), e); err != nil {
		return nil, err
	}
	runtime.KeepAlive(m)
	atomic.AddInt64(&live, 1)
	session := &Session{p: s}
	runtime.SetFinalizer(session, (*Session).Close)
	return session, nil
}

// Close frees the session (a running background generation is cancelled first). Do not call it
// while another goroutine uses the session.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.chord_session_free(s.p)
		s.p = nil
		atomic.AddInt64(&live, -1)
		runtime.SetFinalizer(s, nil)
	}
	return nil
}

func (s *Session) handle() (*C.chord_session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return nil, &Error{Status: StatusInvalidArgument, Message: "the session is closed"}
	}
	return s.p, nil
}

// Append tokenizes text (special tokens such as <|im_start|> recognised; BOS as the model asks,
// in an empty context) and evaluates it; it returns the number of tokens.
func (s *Session) Append(text string) (int, error) {
	sp, err := s.handle()
	if err != nil {
		return 0, err
	}
	p, n, free := cstr(text)
	defer free()
	var count C.size_t
	var e *C.chord_error
	flags := C.uint32_t(C.CHORD_APPEND_ADD_SPECIAL | C.CHORD_APPEND_PARSE_SPECIAL)
	err = check(C.chord_session_append_text(sp, p, n, flags, &count, &e), e)
	runtime.KeepAlive(s)
	return int(count), err
}

// Reset empties the context.
func (s *Session) Reset() error {
	sp, err := s.handle()
	if err != nil {
		return err
	}
	var e *C.chord_error
	return check(C.chord_session_reset(sp, &e), e)
}

// Cancel stops the session's running call at its next token or layer. Any goroutine.
func (s *Session) Cancel() {
	if sp, err := s.handle(); err == nil {
		C.chord_session_cancel(sp)
	}
}

// Params are generation settings; the zero value is not valid: start from DefaultParams.
type Params struct {
	MaxTokens   int
	Temperature float32 // <= 0: greedy
	TopK        int
	TopP, MinP  float32
	Seed        uint64
	Stop        []string
	LogitBias   map[uint32]float32 // float32(math.Inf(-1)) bans a token
}

// DefaultParams are llama.cpp's defaults: 128 tokens, temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05, seed 0.
func DefaultParams() Params {
	return Params{MaxTokens: 128, Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05}
}

// cParams builds chord_generate_params; free it with C.chord_generate_params_free.
func (p Params) cParams() (*C.chord_generate_params, error) {
	var g *C.chord_generate_params
	var e *C.chord_error
	if err := check(C.chord_generate_params_new(&g, &e), e); err != nil {
		return nil, err
	}
	steps := []func() C.chord_status{
		func() C.chord_status { return C.chord_generate_params_set_max_tokens(g, C.uint32_t(p.MaxTokens), &e) },
		func() C.chord_status { return C.chord_generate_params_set_temperature(g, C.float(p.Temperature), &e) },
		func() C.chord_status { return C.chord_generate_params_set_top_k(g, C.uint32_t(p.TopK), &e) },
		func() C.chord_status { return C.chord_generate_params_set_top_p(g, C.float(p.TopP), &e) },
		func() C.chord_status { return C.chord_generate_params_set_min_p(g, C.float(p.MinP), &e) },
		func() C.chord_status { return C.chord_generate_params_set_seed(g, C.uint64_t(p.Seed), &e) },
	}
	for _, stop := range p.Stop {
		stop := stop
		steps = append(steps, func() C.chord_status {
			s, n, free := cstr(stop)
			defer free()
			return C.chord_generate_params_add_stop(g, s, n, &e)
		})
	}
	for tok, bias := range p.LogitBias {
		tok, bias := tok, bias
		steps = append(steps, func() C.chord_status {
			return C.chord_generate_params_add_logit_bias(g, C.chord_token(tok), C.float(bias), &e)
		})
	}
	for _, step := range steps {
		if err := check(step(), e); err != nil {
			C.chord_generate_params_free(g)
			return nil, err
		}
		e = nil
	}
	return g, nil
}

// StopReason says why a generation ended (chord.h's CHORD_STOP_*).
type StopReason uint32

// The stop reasons.
const (
	StopEOG         StopReason = C.CHORD_STOP_EOG
	StopMaxTokens   StopReason = C.CHORD_STOP_MAX_TOKENS
	StopString      StopReason = C.CHORD_STOP_STRING
	StopCallback    StopReason = C.CHORD_STOP_CALLBACK
	StopContextFull StopReason = C.CHORD_STOP_CONTEXT_FULL
)

// textSink is what the text callback's handle refers to.
type textSink struct {
	fn    func(string) bool
	panic interface{}
}

//export chordGoText
func chordGoText(text *C.char, n C.size_t, h C.uintptr_t) C.uint32_t {
	sink := cgo.Handle(h).Value().(*textSink)
	ok := func() (ok bool) {
		defer func() {
			if r := recover(); r != nil { // never unwind through C: stop, re-panic after
				sink.panic = r
				ok = false
			}
		}()
		return sink.fn(C.GoStringN(text, C.int(n)))
	}()
	if ok {
		return 1
	}
	return 0
}

// watch cancels the session when ctx is done, until the returned stop func is called.
func (s *Session) watch(ctx context.Context, sp *C.chord_session) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			C.chord_session_cancel(sp)
		case <-done:
		}
	}()
	return func() { close(done); <-finished }
}

// Generate generates on the calling goroutine, calling onText with whole UTF-8 pieces (return
// false to stop). When ctx is done the generation stops within one token with an error that
// errors.Is(err, ErrCancelled); the tokens generated so far stay in the context.
func (s *Session) Generate(ctx context.Context, p Params, onText func(string) bool) (StopReason, error) {
	sp, err := s.handle()
	if err != nil {
		return 0, err
	}
	g, err := p.cParams()
	if err != nil {
		return 0, err
	}
	defer C.chord_generate_params_free(g)
	sink := &textSink{fn: onText}
	h := cgo.NewHandle(sink)
	defer h.Delete()
	stop := s.watch(ctx, sp)
	var reason C.uint32_t
	var e *C.chord_error
	st := C.chord_go_generate(sp, g, C.uintptr_t(h), &reason, &e)
	stop()
	runtime.KeepAlive(s)
	if sink.panic != nil {
		C.chord_error_free(e)
		panic(sink.panic)
	}
	return StopReason(reason), check(st, e)
}

// Event is one event of Stream: a token's text, or the end (Done true) with its reason or error.
type Event struct {
	Token  uint32
	Text   string
	Done   bool
	Reason StopReason // when Done without Err
	Err    error      // when Done after a failure (errors.Is(Err, ErrCancelled) after a cancel)
}

// Stream starts generating on chord's thread and returns a channel of its events, ending with
// one Done event, after which the channel is closed and the session usable again. When ctx is
// done the generation is cancelled. The polling goroutine ends with the channel; read the channel
// to its end (an unread channel keeps it waiting).
func (s *Session) Stream(ctx context.Context, p Params) (<-chan Event, error) {
	sp, err := s.handle()
	if err != nil {
		return nil, err
	}
	g, err := p.cParams()
	if err != nil {
		return nil, err
	}
	var e *C.chord_error
	st := C.chord_session_generate_start(sp, g, &e)
	C.chord_generate_params_free(g)
	if err := check(st, e); err != nil {
		return nil, err
	}
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		defer runtime.KeepAlive(s)
		buf := make([]byte, 1024)
		cbuf := C.malloc(C.size_t(len(buf)))
		defer C.free(cbuf)
		capacity := len(buf)
		for {
			if ctx.Err() != nil {
				C.chord_session_cancel(sp)
			}
			var kind, detail C.uint32_t
			var tok C.chord_token
			var n C.size_t
			var pe *C.chord_error
			st := C.chord_session_poll(sp, 50, &kind, &tok, &detail, (*C.char)(cbuf), C.size_t(capacity), &n, &pe)
			if st == C.CHORD_E_BUFFER_TOO_SMALL {
				C.chord_error_free(pe)
				C.free(cbuf)
				capacity = int(n)
				cbuf = C.malloc(C.size_t(capacity))
				continue
			}
			if err := check(st, pe); err != nil {
				out <- Event{Done: true, Err: err}
				return
			}
			text := C.GoStringN((*C.char)(cbuf), C.int(n))
			switch kind {
			case C.CHORD_EVENT_TOKEN:
				out <- Event{Token: uint32(tok), Text: text}
			case C.CHORD_EVENT_DONE:
				out <- Event{Text: text, Done: true, Reason: StopReason(detail)}
				return
			case C.CHORD_EVENT_ERROR:
				out <- Event{Done: true, Err: &Error{Status: Status(detail), Message: text}}
				return
			}
		}
	}()
	return out, nil
}

// chordGoLog calls the installed log function (its handle lives until chord releases it).
//
//export chordGoLog
func chordGoLog(level C.uint32_t, msg *C.char, n C.size_t, h C.uintptr_t) {
	cgo.Handle(h).Value().(func(uint32, string))(uint32(level), C.GoStringN(msg, C.int(n)))
}

//export chordGoFree
func chordGoFree(h C.uintptr_t) { cgo.Handle(h).Delete() }

// SetLogCallback installs fn to receive chord's log messages (level CHORD_LOG_*, message); it may
// be called from chord's threads, several at once. nil removes it. The previous function is
// released when chord no longer uses it.
func SetLogCallback(fn func(level uint32, message string)) error {
	var e *C.chord_error
	if fn == nil {
		return check(C.chord_go_set_log(0, 0, &e), e)
	}
	h := cgo.NewHandle(fn)
	if err := check(C.chord_go_set_log(C.uintptr_t(h), 1, &e), e); err != nil {
		h.Delete()
		return err
	}
	return nil
}
