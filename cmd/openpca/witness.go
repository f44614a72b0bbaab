package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/openpca/openpca/connlimit"
	"github.com/openpca/openpca/internal/smallbody"
	"github.com/openpca/openpca/seal"
	"github.com/openpca/openpca/witness"
)

const witnessUsage = `usage: openpca witness serve --name NAME --log ORIGIN=KEY... [--listen ADDR] [--data-dir DIR]
       openpca witness public-key [--data-dir DIR]

A witness cosigns the checkpoints of the audit logs it is told to trust,
once it has checked that each extends the last it cosigned of the same
log (c2sp.org/tlog-witness). Run it apart from the OpenPCA server, on a
machine its operator does not control, and give its public key and
address to the server (--witness) and to auditors (openpca audit verify
--witness).
`

// witnessCommand runs "openpca witness serve|public-key".
func witnessCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, witnessUsage, stdout, stderr); err != nil {
		return err
	}
	fs := flag.NewFlagSet("openpca witness "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "openpca-witness", "the witness's folder: its key and its database")
	switch args[0] {
	case "public-key":
		if err := parseFlags(fs, "", args[1:], lookupEnv); err != nil {
			return err
		}
		skey, err := os.ReadFile(filepath.Join(*dir, witnessKeyFile))
		if err != nil {
			return fmt.Errorf("the witness's key: %w (openpca witness serve --name makes it)", err)
		}
		vkey, err := witness.PublicKey(strings.TrimSpace(string(skey)))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, vkey)
		return err
	case "serve":
		name := fs.String("name", "", "the witness's name, in its cosignatures and public key, such as witness.example.com/w1 (needed when its key is made)")
		listen := fs.String("listen", "127.0.0.1:8081", "address to serve the witness on")
		var logs []witness.Log
		// The witness tells keys apart by name and 32-bit hash, as
		// signatures name them: two keys alike in both, one made to
		// collide with the other, would pass for each other.
		byID := map[string]string{}
		fs.Func("log", "a log to cosign: ORIGIN=KEY, its checkpoints' origin (a final * takes every origin it starts: openpca/arn:aws:acm-pca:us-east-1:111122223333:* for an OpenPCA account's CAs) and the audit public key that signs them (across a key change, the old and the new, space-separated: they sign one log); repeat for each", func(v string) error {
			origin, keys, ok := strings.Cut(v, "=")
			if !ok || origin == "" || len(strings.Fields(keys)) == 0 {
				return fmt.Errorf("not ORIGIN=KEY: %q", v)
			}
			l := witness.Log{Origin: origin}
			for _, key := range strings.Fields(keys) {
				verifier, err := note.NewVerifier(key)
				if err != nil {
					return err
				}
				id := fmt.Sprintf("%s+%08x", verifier.Name(), verifier.KeyHash())
				if other, ok := byID[id]; ok && other != key {
					return fmt.Errorf("the keys %s and %s have the same name and hash: the witness could not tell their signatures apart", other, key)
				}
				byID[id] = key
				l.Keys = append(l.Keys, verifier)
			}
			logs = append(logs, l)
			return nil
		})
		if err := parseFlags(fs, "", args[1:], lookupEnv); err != nil {
			return err
		}
		if len(logs) == 0 {
			return errors.New("--log is required: the witness cosigns only the logs it is told to trust")
		}
		return serveWitness(ctx, *dir, *name, *listen, logs, stdout, stderr)
	}
	fmt.Fprint(stderr, witnessUsage)
	return fmt.Errorf("unknown witness command %q", args[0])
}

// Bounds of what the witness's clients hold of it.
const (
	witnessMaxHeader = 8 << 10
	witnessMaxConns  = 1024
	// A server sends a round for at most four CAs at once: sixteen
	// servers behind one address fit, and a network past this many is
	// holding the slots of others.
	witnessMaxConnsPerNetwork = 64
)

// witnessKeyFile holds the witness's private key in its folder.
const witnessKeyFile = "witness.key"

func serveWitness(ctx context.Context, dir, name, listen string, logs []witness.Log, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Two witnesses started on one new folder each made a key, and served
	// it, and the folder kept only one: the other's public key, handed
	// out, failed at the next start. The lock is on the folder itself,
	// and ends with the process.
	lock, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("the witness's folder %s is in use by another openpca witness serve", dir)
	}
	keyPath, dbPath := filepath.Join(dir, witnessKeyFile), filepath.Join(dir, "witness.db")
	skey, err := os.ReadFile(keyPath)
	made := errors.Is(err, os.ErrNotExist)
	var vkey string
	switch {
	case made && name == "":
		return errors.New("--name is required to make the witness's key")
	case made:
		// Written once its database is made (below): a key without its
		// database is one whose state was lost.
		s, vk, err := witness.NewKey(name)
		if err != nil {
			return err
		}
		skey, vkey = []byte(s), vk
	case err != nil:
		return err
	default:
		// What the witness cosigned is in its database alone. Started
		// without it, it would cosign from nothing, under the key the
		// servers and auditors trust, any log it cosigned before: a fork
		// of one, a log restored from a backup, one rewritten. A file in
		// its place without its tables (emptied, or another program's
		// database) is no better: SQLite would make them in it, empty.
		var lost string
		switch _, err := os.Stat(dbPath); {
		case errors.Is(err, os.ErrNotExist):
			lost = "is gone"
		case err != nil:
			return err
		default:
			kept, err := witness.HasState(ctx, dbPath)
			if err != nil {
				return err
			}
			if !kept {
				lost = "holds no witness's state (it is empty, or another program's database)"
			}
		}
		if lost != "" {
			return fmt.Errorf("the witness's key is in %s but its database %s %s: started, it would cosign again, as if new, logs it cosigned, forks of them included. Restore the database as it last was, or else make a new key (move %s away) and give the servers and auditors its public key in place of this one", dir, dbPath, lost, witnessKeyFile)
		}
	}
	logger, closeLogs := asyncLogger(stderr, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) })
	defer closeLogs()
	// Nothing to reload: SIGHUP must not end the witness (its default).
	hup, done := make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(hup, syscall.SIGHUP)
	defer func() {
		signal.Stop(hup)
		close(done)
	}()
	go func() {
		for {
			select {
			case <-hup:
				logger.Info("SIGHUP: the witness has nothing to reload")
			case <-done:
				return
			}
		}
	}()
	w, err := witness.NewServer(ctx, witness.Config{Key: strings.TrimSpace(string(skey)), Logs: logs, Database: dbPath, Logger: logger, MaxConnections: witnessMaxConns})
	if err != nil {
		return err
	}
	defer w.Close()
	if made {
		if err := seal.WriteFile(keyPath, append(skey, '\n')); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Made the witness's key. Its public key, for the servers and auditors that trust it:\n  %s\n", vkey)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	// Anyone can reach a witness: each connection's memory is bounded (an
	// add-checkpoint request needs no header of size, and its body is
	// 64 KiB at most, within the server's budget of bodies) and so is
	// their number, so that slow clients take little of it. A server sends
	// one request a round, so a connection idle for 5 seconds is let go:
	// idle ones cannot hold the slots for long. A request refused unread
	// (too large, past its network's share of the budget, to another
	// path) is answered at once and its connection ended
	// (smallbody.Bound): net/http would otherwise read what is left of
	// its body first, and a body held back kept its connection, and its
	// answer, until the read timeout.
	srv := &http.Server{Handler: smallbody.Bound(w), MaxHeaderBytes: witnessMaxHeader, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 5 * time.Second}
	limited := connlimit.Listen(l, connlimit.Limits{Total: witnessMaxConns, PerNetwork: witnessMaxConnsPerNetwork, Logger: logger})
	limited.Limit(srv)
	l = limited
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	logger.Info("serving the witness", "url", "http://"+l.Addr().String(), "key", w.VerifierKey())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
