"""A UPnP Internet Gateway Device for the harness: run in a NAT router's
namespace, it answers SSDP searches on the LAN, serves a device description
and handles AddPortMapping by installing real iptables DNAT + FORWARD rules.

    python -m tests.nat.upnp_gateway LAN_IP WAN_DEV WAN_IP
"""

from __future__ import annotations

import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.nat.netns import forward_port

HTTP_PORT = 5000
SERVICE = "urn:schemas-upnp-org:service:WANIPConnection:1"


def description(lan_ip: str) -> bytes:
    return f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceList><device><serviceList><service>
<serviceType>{SERVICE}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><SCPDURL>/scpd.xml</SCPDURL>
</service></serviceList></device></deviceList></device></deviceList>
</device></root>""".encode()


def main(lan_ip: str, wan_dev: str, wan_ip: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(description(lan_ip))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            action = self.headers["SOAPAction"].strip('"').split("#")[1]
            if action == "GetExternalIPAddress":
                inner = f"<NewExternalIPAddress>{wan_ip}</NewExternalIPAddress>"
            elif action == "AddPortMapping":
                args = dict(re.findall(r"<(New\w+)>([^<]*)</", body))
                forward_port(
                    wan_dev,
                    int(args["NewExternalPort"]),
                    args["NewInternalClient"],
                    int(args["NewInternalPort"]),
                )
                inner = ""
            else:
                self.send_response(500)
                self.end_headers()
                return
            self._send(
                f'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
                f'envelope/"><s:Body><u:{action}Response xmlns:u="{SERVICE}">{inner}'
                f"</u:{action}Response></s:Body></s:Envelope>".encode()
            )

    http = HTTPServer((lan_ip, HTTP_PORT), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ssdp.bind(("0.0.0.0", 1900))
    group = socket.inet_aton("239.255.255.250") + socket.inet_aton(lan_ip)
    ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
    print("ready", flush=True)
    while True:
        data, addr = ssdp.recvfrom(2048)
        if data.startswith(b"M-SEARCH") and b"InternetGatewayDevice" in data:
            answer = (
                "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
                "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
                f"LOCATION: http://{lan_ip}:{HTTP_PORT}/desc.xml\r\n\r\n"
            )
            ssdp.sendto(answer.encode(), addr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
