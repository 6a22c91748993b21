export { freePort } from '../../server/src/net/free-port.js';
