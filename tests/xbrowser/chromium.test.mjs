// The cross-browser suite (suite.mjs) in chromium, through its WebDriver.
import { suite } from './suite.mjs';

suite('chromium');
