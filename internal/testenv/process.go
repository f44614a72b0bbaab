package testenv

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"
)

// A process is a server the tests run as a command, behind a Relay: it can
// be stopped and started again, on a port of its own each time, and its
// clients keep the Relay's address.
type process struct {
	name   string
	relay  *Relay
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
	// command runs the server on addr (127.0.0.1:port); ready is nil
	// once it answers there.
	command func(addr string) *exec.Cmd
	ready   func(ctx context.Context, addr string) error
}

func newProcess(t testing.TB, name string, command func(addr string) *exec.Cmd, ready func(ctx context.Context, addr string) error) *process {
	p := &process{name: name, relay: NewRelay(t), command: command, ready: ready}
	t.Cleanup(p.stop)
	return p
}

// start starts the server. A port found free is not reserved: another
// test's server may take it before this one binds it, and this one then
// exits. It is tried on another.
func (p *process) start(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		out, ok := p.run(t, addr)
		if ok {
			p.relay.To(addr)
			return
		}
		if attempt == 5 {
			t.Fatalf("%s did not start: %s", p.name, out)
		}
	}
}

// run runs the server on addr and waits until it answers there: a TCP
// connection alone could reach another process that took the port. It
// returns the server's output if it exited or never answered.
func (p *process) run(t testing.TB, addr string) (string, bool) {
	t.Helper()
	p.cmd = p.command(addr)
	out := &SyncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(p.cmd)
	p.exited = exited
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			p.cmd = nil
			return out.String(), false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := p.ready(ctx, addr)
		cancel()
		if err == nil {
			// Another test's server of the same kind, which took the
			// port first, answers alike; this one, unable to bind it,
			// exits at once.
			select {
			case <-exited:
				p.cmd = nil
				return out.String(), false
			case <-time.After(100 * time.Millisecond):
				return "", true
			}
		}
	}
	p.stop()
	return out.String(), false
}

// stop stops the server; it is safe to call twice. Clients connecting
// while it is away are reset.
func (p *process) stop() {
	p.relay.To("")
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}
