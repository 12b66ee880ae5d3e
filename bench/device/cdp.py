#!/usr/bin/env python3
"""Drive a headless Chromium over the DevTools protocol on a pipe (stdlib only, no Node or chromedriver).

For machines where only Python is there (the device tool's GPU machine). Opens URL in a fresh profile, prints the
page's console lines as they come, and ends when the JS expression --until is truthy (polled every second), then
prints the value of --result (JSON) if given.

usage: cdp.py URL [--chromium BIN] [--flag F ...] [--until EXPR] [--result EXPR] [--timeout S] [--grep PREFIX]
"""
import argparse, json, os, select, shutil, subprocess, sys, tempfile, time


class Chromium:
    def __init__(self, binary, flags):
        self.profile = tempfile.mkdtemp(prefix='cdp-')
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():  # the protocol's pipe: Chromium reads fd 3 and writes fd 4 (via copies: 3 or 4 may be taken)
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [binary, '--remote-debugging-pipe', f'--user-data-dir={self.profile}', *flags, 'about:blank'],
            preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.profile, 'stderr.log'), 'w'))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf, self.next_id, self.events = b'', 0, []

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {'id': self.next_id, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b'\0')
        deadline = time.time() + timeout
        while True:
            m = self.read(deadline - time.time())
            if m is None:
                raise TimeoutError(method)
            if m.get('id') == self.next_id:
                if 'error' in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get('result', {})
            self.events.append(m)

    def read(self, timeout):
        while b'\0' not in self.buf:
            if timeout <= 0 or not select.select([self.from_chrome], [], [], timeout)[0]:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                tail = open(os.path.join(self.profile, 'stderr.log'), errors='replace').read()[-3000:]
                raise RuntimeError('Chromium closed the pipe; its stderr ends:\n' + tail)
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def drain(self, timeout=0.0):
        """Events received so far (and any within `timeout` seconds)."""
        while (m := self.read(timeout)) is not None:
            self.events.append(m)
            timeout = 0
        out, self.events = self.events, []
        return out

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def console_text(event):
    if event.get('method') == 'Runtime.consoleAPICalled':
        return ' '.join(str(a.get('value', a.get('description', ''))) for a in event['params']['args'])
    if event.get('method') == 'Runtime.exceptionThrown':
        d = event['params']['exceptionDetails']
        return 'EXCEPTION ' + d.get('exception', {}).get('description', d.get('text', ''))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('url')
    ap.add_argument('--chromium', default=os.environ.get('CHROMIUM', 'chromium'))
    ap.add_argument('--flag', action='append', default=[])
    ap.add_argument('--until', default='false')
    ap.add_argument('--result')
    ap.add_argument('--timeout', type=float, default=300)
    ap.add_argument('--grep', default='', help='print only console lines starting with this')
    ap.add_argument('--files', nargs=2, metavar=('SELECTOR', 'PATH'),
                    help='set the file input SELECTOR to PATH (as a user picking it) once --files-when holds')
    ap.add_argument('--files-when', default='true')
    a = ap.parse_args()
    c = Chromium(a.chromium, a.flag)
    status = 1
    try:
        target = c.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        session = c.send('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
        c.send('Runtime.enable', session=session)
        c.send('Page.navigate', {'url': a.url}, session=session)
        def show(wait):
            for e in c.drain(wait):
                line = console_text(e)
                if line is not None and line.startswith(a.grep):
                    print(line, flush=True)

        deadline = time.time() + a.timeout
        files = a.files
        while time.time() < deadline:
            show(1.0)
            if files:
                ready = c.send('Runtime.evaluate', {'expression': f'!!({a.files_when})', 'returnByValue': True},
                               session=session)
                if ready.get('result', {}).get('value'):
                    root = c.send('DOM.getDocument', {}, session=session)['root']['nodeId']
                    node = c.send('DOM.querySelector', {'nodeId': root, 'selector': files[0]}, session=session)
                    c.send('DOM.setFileInputFiles', {'files': [files[1]], 'nodeId': node['nodeId']}, session=session)
                    files = None
            done = c.send('Runtime.evaluate', {'expression': f'!!({a.until})', 'returnByValue': True},
                          session=session)
            if done.get('result', {}).get('value'):
                status = 0
                break
        else:
            print(f'cdp.py: timed out after {a.timeout:.0f} s', file=sys.stderr)
        show(0.5)  # what the page logged while the last poll ran
        if a.result:
            r = c.send('Runtime.evaluate', {'expression': f'JSON.stringify({a.result})', 'returnByValue': True,
                                             'awaitPromise': True}, session=session)
            print(r.get('result', {}).get('value'), flush=True)
    finally:
        c.close()
    sys.exit(status)


if __name__ == '__main__':
    main()
