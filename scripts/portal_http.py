"""What the test scripts share to talk to a running portal: a free port, and a password sign-in."""
import http.client, re, socket, urllib.parse


def free_port():
    """A port on loopback that nothing listens on now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sign_in(port, email, password):
    """Signs in with a password (an account with no second factor); returns the cookies set,
    name -> value. Raises RuntimeError when the sign-in does not open a session."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/signin")
    r = c.getresponse()
    page = r.read().decode()
    cookies = {}

    def take(resp):
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, val = v.split(";")[0].split("=", 1)
                cookies[name] = val

    take(r)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "email": email, "password": password})
    c.request("POST", "/signin", body, {"Content-Type": "application/x-www-form-urlencoded",
                                         "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    r = c.getresponse()
    r.read()
    take(r)
    if r.status != 303 or "tiaki_session" not in cookies:
        raise RuntimeError(f"{email} could not sign in: {r.status}")
    return cookies


def ready(port, proc, seconds=30):
    """Waits for the portal's /readyz to answer 200; False if it does not (or the process ends)."""
    import time
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    return False


def log_tail(log_path):
    """The end of a log file, for a failure message."""
    with open(log_path, "rb") as f:
        return f.read()[-2000:].decode(errors="replace")
